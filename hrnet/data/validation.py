"""Checks a COCO person-keypoint split before the prepare stage indexes it.

Every problem is one line that names the file and the record::

    <file>: <record>: <what is wrong> (expected <what would be right>)

What is checked, in this order:

1. layout (:func:`locate_split`): ``data.root`` exists, the split's annotation file and image
   folder are where the layout puts them (with a hint when they sit somewhere else);
2. the annotation file (:func:`read_annotation_file`): valid JSON, an object with ``images``,
   ``annotations`` and ``categories`` lists and the person category (id 1);
3. every record (:func:`validate_records`): image entries (``id``, ``file_name``, ``width``,
   ``height``) and annotations (``id``, ``image_id``, ``category_id``; for persons also ``bbox``,
   ``area``, ``iscrowd`` and ``keypoints`` of 17x3 = 51 numbers with visibility 0/1/2). A box
   must have a positive size and overlap its image; a box that only sticks out is clipped later,
   as in the reference code;
4. every image file referenced by a kept person record (:func:`check_images`): present, not
   empty, a JPEG with its end-of-image marker, decodable by OpenCV, of the size the annotation
   file states.

Problems of 1 and 2 make the whole split unusable and always raise. Problems of 3 and 4 go to an
:class:`IssueLog`: with ``on_bad_sample="fail"`` (the default) the first one raises
:class:`DataError`; with ``"skip"`` the bad annotation (or the bad image with all its
annotations) is dropped and listed in the report written by :meth:`IssueLog.write`.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import json
import math
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from hrnet.data.coco_constants import NUM_KEYPOINTS
from hrnet.data.coco_reader import PERSON_CATEGORY_ID, coco_layout, load_person_instances
from hrnet.data.images import truncated_jpeg
from hrnet.errors import DataError, MissingFileError
from hrnet.io import atomic_write_json, atomic_write_text

OnBadSample = Literal["fail", "skip"]

MAX_EXAMPLES = 20  # offenders listed in the report; the count covers all of them
REPORT_FORMAT = "hrnet-data-issues"
TOP_LEVEL_FIELDS = ("images", "annotations", "categories")
IMAGE_FIELDS = ("id", "file_name", "width", "height")
ANNOTATION_FIELDS = ("id", "image_id", "category_id")
PERSON_FIELDS = (*ANNOTATION_FIELDS, "bbox", "area", "iscrowd", "keypoints")
NUM_KEYPOINT_VALUES = 3 * NUM_KEYPOINTS


# ----------------------------------------------------------------------------- issue log
@dataclass(frozen=True)
class Issue:
    """One bad record: an annotation, an image entry or an image file."""

    split: str
    file: str
    record: str  # "annotation 1203", "image 17", "annotations[4]" (when the id itself is bad)
    record_id: int | None
    reason: str

    def message(self) -> str:
        return f"{self.file}: {self.record}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "file": self.file,
            "record": self.record,
            "id": self.record_id,
            "reason": self.reason,
        }


@dataclass
class IssueLog:
    """Collects bad records; raises on the first one under ``on_bad_sample="fail"``.

    ``display`` turns a path into the text shown in messages and the report (the prepare stage
    maps its temporary output folder to the final one).
    """

    on_bad_sample: OnBadSample = "fail"
    display: Callable[[Path], str] = str
    max_examples: int = MAX_EXAMPLES
    issues: list[Issue] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.on_bad_sample not in ("fail", "skip"):
            raise ValueError(f"on_bad_sample: expected 'fail' or 'skip', got {self.on_bad_sample!r}")

    def start(self, split: str) -> None:
        """Makes ``split`` appear in the report even when none of its records is bad."""
        self.splits.setdefault(split, 0)

    def add(self, split: str, file: Path, record: str, reason: str, record_id: int | None = None) -> None:
        issue = Issue(split, self.display(Path(file)), record, record_id, reason)
        if self.on_bad_sample == "fail":
            raise DataError(issue.message())
        self.issues.append(issue)
        self.splits[split] = self.splits.get(split, 0) + 1

    @property
    def count(self) -> int:
        return len(self.issues)

    def count_for(self, split: str) -> int:
        return self.splits.get(split, 0)

    def summary(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "on_bad_sample": self.on_bad_sample,
            "count": self.count,
            "by_split": dict(self.splits),
            "examples": [issue.to_json() for issue in self.issues[: self.max_examples]],
        }

    def write(self, path: str | Path) -> None:
        """Writes :meth:`summary` to ``path`` atomically."""
        atomic_write_json(path, self.summary())


_ACTIVE: contextvars.ContextVar[IssueLog | None] = contextvars.ContextVar("hrnet_issue_log", default=None)


@contextlib.contextmanager
def collect_issues(on_bad_sample: OnBadSample, display: Callable[[Path], str] = str) -> Iterator[IssueLog]:
    """Makes a fresh :class:`IssueLog` the one :func:`active_issue_log` returns inside the block."""
    issues = IssueLog(on_bad_sample, display=display)
    token = _ACTIVE.set(issues)
    try:
        yield issues
    finally:
        _ACTIVE.reset(token)


def active_issue_log() -> IssueLog:
    """The log opened by :func:`collect_issues`; outside one, a new log that fails on the first issue."""
    return _ACTIVE.get() or IssueLog("fail")


# ----------------------------------------------------------------------------- helpers
def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _show(value: Any, limit: int = 60) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number (``type`` rather than ``isinstance``: booleans are not numbers)."""
    return type(value) in (int, float) and math.isfinite(value)


def _fields(names: Iterable[str]) -> str:
    return ", ".join(names)


def _missing(entry: dict[str, Any], required: tuple[str, ...]) -> str | None:
    missing = [name for name in required if name not in entry]
    if not missing:
        return None
    plural = "s" if len(missing) > 1 else ""
    return f"missing field{plural} {_fields(map(repr, missing))} (expected {_fields(required)})"


def _record(kind: str, index: int, entry: dict[str, Any]) -> tuple[str, int | None]:
    """``"image 17"`` when the entry has a usable id, else its position ``"images[3]"``."""
    record_id = entry.get("id")
    if _is_int(record_id):
        return f"{kind} {record_id}", record_id
    return f"{kind}s[{index}]", None


# ----------------------------------------------------------------------------- 1. layout
def _layout_text(source: str, split: str) -> str:
    ann_file, image_dir = coco_layout(source, Path("."), split, must_exist=False)
    return f"{ann_file.as_posix()} and {image_dir.as_posix()}/ under the {source} root"


def _nearby(root: Path, pattern: str, *, dirs: bool) -> list[str]:
    """Paths (relative to ``root``, at most two levels deep) matching ``pattern``."""
    found: list[str] = []
    for candidate in (*root.glob(pattern), *root.glob(f"*/{pattern}"), *root.glob(f"*/*/{pattern}")):
        if candidate.is_dir() == dirs:
            found.append(candidate.relative_to(root).as_posix() + ("/" if dirs else ""))
    return sorted(found)[:3]


def locate_split(source: str, root: Path, split: str) -> tuple[Path, Path]:
    """(annotation file, image folder) of ``split``; raises ``FileNotFoundError`` naming what is off."""
    root = Path(root)
    layout = _layout_text(source, split)
    if not root.exists():
        raise MissingFileError(f"{root}: data.root does not exist (expected a folder holding {layout})")
    if not root.is_dir():
        raise MissingFileError(f"{root}: data.root is not a folder (expected a folder holding {layout})")
    ann_file, image_dir = coco_layout(source, root, split, must_exist=False)
    if not ann_file.is_file():
        found = _nearby(root, "person_keypoints_*.json", dirs=False)
        hint = f"; found {', '.join(found)}" if found else ""
        if not (root / "annotations").is_dir():
            hint = f"; there is no annotations/ folder{hint}"
        raise MissingFileError(
            f"{ann_file}: annotation file of split {split!r} not found (expected {layout}{hint})"
        )
    if not image_dir.is_dir():
        found = [f for f in _nearby(root, image_dir.name, dirs=True) if f != f"{image_dir.name}/"]
        hint = f"; found {', '.join(found)}" if found else ""
        raise MissingFileError(
            f"{image_dir}: image folder of split {split!r} not found (expected {layout}{hint})"
        )
    return ann_file, image_dir


# ----------------------------------------------------------------------------- 2. annotation file
def read_annotation_file(ann_file: Path) -> dict[str, Any]:
    """Parses ``ann_file`` and checks its top level; every problem raises :class:`DataError`."""
    ann_file = Path(ann_file)
    expected = "expected a COCO keypoint file: a JSON object with images, annotations and categories"
    try:
        raw = ann_file.read_bytes()
    except FileNotFoundError:
        raise MissingFileError(f"{ann_file}: annotation file not found") from None
    except OSError as exc:
        raise DataError(f"{ann_file}: cannot read the file ({exc.strerror}) ({expected})") from None
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{ann_file}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}) ({expected})"
        ) from None
    except UnicodeDecodeError:
        raise DataError(f"{ann_file}: not valid JSON (not UTF-8 text) ({expected})") from None
    except RecursionError:
        raise DataError(f"{ann_file}: not valid JSON (nested too deeply) ({expected})") from None
    if not isinstance(data, dict):
        raise DataError(f"{ann_file}: the top level is a JSON {_json_type(data)} ({expected})")
    for name in TOP_LEVEL_FIELDS:
        if name not in data:
            raise DataError(f"{ann_file}: missing top-level field {name!r} ({expected})")
        if not isinstance(data[name], list):
            raise DataError(
                f"{ann_file}: {name}: is a JSON {_json_type(data[name])} (expected an array of objects)"
            )
    if not any(isinstance(c, dict) and c.get("id") == PERSON_CATEGORY_ID for c in data["categories"]):
        raise DataError(
            f"{ann_file}: categories: no category with id {PERSON_CATEGORY_ID} "
            f"(expected COCO's person category, id {PERSON_CATEGORY_ID})"
        )
    return data


# ----------------------------------------------------------------------------- 3. records
def _image_problem(entry: dict[str, Any], seen: set[int]) -> str | None:
    missing = _missing(entry, IMAGE_FIELDS)
    if missing:
        return missing
    image_id, name = entry["id"], entry["file_name"]
    if not _is_int(image_id):
        return f"id is {_show(image_id)} (expected an integer)"
    if image_id in seen:
        return "duplicate image id (expected each image id once)"
    if (
        not isinstance(name, str)
        or not name
        or name.startswith(("/", "\\"))
        or ".." in PurePosixPath(name).parts
    ):
        return f"file_name is {_show(name)} (expected a file name inside the split's image folder)"
    for key in ("width", "height"):
        value = entry[key]
        if not (_is_number(value) and float(value).is_integer() and value > 0):
            return f"{key} is {_show(value)} (expected a positive integer)"
    return None


def _bbox_problem(bbox: Any, width: int, height: int) -> str | None:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return f"bbox is {_show(bbox)} (expected [x, y, width, height]: 4 finite numbers)"
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        return f"bbox {_show(bbox)} has a non-positive size {w:g}x{h:g} (expected width > 0 and height > 0)"
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return (
            f"bbox {_show(bbox)} lies outside the {width}x{height} image "
            "(expected a box overlapping the image)"
        )
    return None


def _keypoints_problem(keypoints: Any) -> str | None:
    expected = f"expected {NUM_KEYPOINTS}x3 = {NUM_KEYPOINT_VALUES} numbers: x, y, visibility per joint"
    if not isinstance(keypoints, list):
        return f"keypoints is a JSON {_json_type(keypoints)} ({expected})"
    if len(keypoints) != NUM_KEYPOINT_VALUES:
        return f"keypoints has {len(keypoints)} values ({expected})"
    if not all(map(_is_number, keypoints)):
        index, value = next((i, v) for i, v in enumerate(keypoints) if not _is_number(v))
        return f"keypoints[{index}] is {_show(value)} ({expected})"
    for joint in range(NUM_KEYPOINTS):
        visibility = keypoints[3 * joint + 2]
        if visibility not in (0, 1, 2):
            where = f"keypoints[{3 * joint + 2}] (visibility of joint {joint})"
            return f"{where} is {visibility:g} (expected 0, 1 or 2)"
    return None


def _annotation_problem(ann: dict[str, Any], images: dict[int, dict[str, Any]], seen: set[int]) -> str | None:
    person = ann.get("category_id") == PERSON_CATEGORY_ID
    missing = _missing(ann, PERSON_FIELDS if person else ANNOTATION_FIELDS)
    if missing:
        return missing
    for key in ANNOTATION_FIELDS:
        if not _is_int(ann[key]):
            return f"{key} is {_show(ann[key])} (expected an integer)"
    if ann["id"] in seen:
        return "duplicate annotation id (expected each annotation id once)"
    image = images.get(ann["image_id"])
    if image is None:
        return f"image_id {ann['image_id']} is not in 'images' (expected the id of an image entry)"
    if not person:
        return None
    area, crowd = ann["area"], ann["iscrowd"]
    if not (_is_number(area) and area >= 0):
        return f"area is {_show(area)} (expected a number >= 0)"
    if crowd not in (0, 1):
        return f"iscrowd is {_show(crowd)} (expected 0 or 1)"
    return _bbox_problem(ann["bbox"], int(image["width"]), int(image["height"])) or _keypoints_problem(
        ann["keypoints"]
    )


@dataclass
class CheckedRecords:
    """What :func:`validate_records` kept; ``dataset`` is the input itself when nothing was dropped."""

    dataset: dict[str, Any]
    dropped: int = 0


def validate_records(dataset: dict[str, Any], ann_file: Path, split: str, issues: IssueLog) -> CheckedRecords:
    """Checks every image entry and annotation of a file read by :func:`read_annotation_file`."""
    images: dict[int, dict[str, Any]] = {}
    seen_images: set[int] = set()
    bad_images: set[int] = set()  # ids whose (only) entry was reported: their annotations go too
    dropped = 0
    for index, entry in enumerate(dataset["images"]):
        if not isinstance(entry, dict):
            issues.add(
                split, ann_file, f"images[{index}]", f"is a JSON {_json_type(entry)} (expected an object)"
            )
            dropped += 1
            continue
        record, record_id = _record("image", index, entry)
        problem = _image_problem(entry, seen_images)
        if record_id is not None:
            seen_images.add(record_id)
        if problem:
            issues.add(split, ann_file, record, problem, record_id)
            dropped += 1
            if record_id is not None and record_id not in images:
                bad_images.add(record_id)
            continue
        images[entry["id"]] = entry
    kept: list[dict[str, Any]] = []
    seen: set[int] = set()
    for index, ann in enumerate(dataset["annotations"]):
        if not isinstance(ann, dict):
            issues.add(
                split, ann_file, f"annotations[{index}]", f"is a JSON {_json_type(ann)} (expected an object)"
            )
            dropped += 1
            continue
        if _is_int(ann.get("image_id")) and ann["image_id"] in bad_images:
            dropped += 1  # its image entry was reported (and skipped) already
            continue
        record, record_id = _record("annotation", index, ann)
        problem = _annotation_problem(ann, images, seen)
        if problem:
            issues.add(split, ann_file, record, problem, record_id)
            dropped += 1
            continue
        seen.add(ann["id"])
        kept.append(ann)
    if not dropped:
        return CheckedRecords(dataset)
    return CheckedRecords({**dataset, "images": list(images.values()), "annotations": kept}, dropped)


def drop_images(dataset: dict[str, Any], image_ids: set[int]) -> dict[str, Any]:
    """``dataset`` without the images ``image_ids`` and their annotations."""
    return {
        **dataset,
        "images": [image for image in dataset["images"] if image["id"] not in image_ids],
        "annotations": [ann for ann in dataset["annotations"] if ann["image_id"] not in image_ids],
    }


# ----------------------------------------------------------------------------- 4. image files
def check_image_file(path: Path, width: int | None = None, height: int | None = None) -> str | None:
    """Why the image at ``path`` is unusable (one line ending in ``(expected ...)``), or None."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return "image file not found (expected the file named by file_name in the split's image folder)"
    except OSError as exc:
        return f"cannot read the image file ({exc.strerror}) (expected a readable JPEG or PNG file)"
    if not data:
        return "image file is empty (expected a JPEG or PNG image)"
    if truncated_jpeg(data):  # the rule read_image applies
        return "truncated JPEG: no end-of-image marker (expected a complete JPEG ending in FF D9)"
    # A 1/8-scale decode still entropy-decodes the whole file but skips most of the IDCT work.
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)
    if decoded is None or decoded.size == 0:
        return "not a decodable image (expected a JPEG or PNG that OpenCV can read)"
    if width is not None and height is not None:
        try:
            with Image.open(io.BytesIO(data)) as image:
                actual = image.size
        except (UnidentifiedImageError, OSError, ValueError):
            return None  # OpenCV reads it but PIL does not know the format: no size check
        if actual != (width, height):
            return (
                f"image is {actual[0]}x{actual[1]} pixels "
                f"(expected {width}x{height} as stated in the annotation file)"
            )
    return None


def _workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(8, cpus))


def check_images(
    records: list[dict[str, Any]],
    image_dir: Path,
    dataset: dict[str, Any],
    split: str,
    issues: IssueLog,
    *,
    progress: bool = True,
) -> tuple[list[dict[str, Any]], set[int]]:
    """Checks each image referenced by ``records`` once; returns (records kept, bad image ids)."""
    sizes = {image["id"]: (int(image["width"]), int(image["height"])) for image in dataset["images"]}
    files: dict[int, str] = {}
    for record in records:
        files.setdefault(record["image_id"], record["image_file"])
    todo = sorted(files.items())

    def check(item: tuple[int, str]) -> str | None:
        image_id, name = item
        return check_image_file(image_dir / name, *sizes.get(image_id, (None, None)))

    bad: set[int] = set()
    pool = ThreadPoolExecutor(max_workers=_workers(), thread_name_prefix="check-images")
    try:
        results = pool.map(check, todo)
        with tqdm(total=len(todo), desc=f"checking {split} images", unit="img", disable=not progress) as bar:
            for (image_id, name), problem in zip(todo, results):
                bar.update()
                if problem:
                    issues.add(split, image_dir / name, f"image {image_id}", problem, image_id)
                    bad.add(image_id)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return [record for record in records if record["image_id"] not in bad], bad


# ----------------------------------------------------------------------------- all of it
@dataclass
class KeypointSplit:
    """A checked split: the records to index and the annotation file that matches them."""

    records: list[dict[str, Any]]
    image_dir: Path
    ann_file: Path  # the input file, or a copy without the skipped records (for evaluation)
    source_ann_file: Path
    skipped: int = 0


def check_keypoint_split(
    ann_file: Path,
    image_dir: Path,
    *,
    split: str,
    out_dir: Path,
    issues: IssueLog | None = None,
    progress: bool = True,
) -> KeypointSplit:
    """Reads and checks a COCO keypoint split (steps 2-4 of the module docstring).

    When records were skipped, the annotation file without them is written to
    ``out_dir/annotations/person_keypoints_<split>.checked.json`` and returned as ``ann_file``, so
    that evaluation scores exactly the records that were indexed.
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    issues = issues if issues is not None else active_issue_log()
    issues.start(split)
    before = issues.count
    checked = validate_records(read_annotation_file(ann_file), ann_file, split, issues)
    records = load_person_instances(ann_file, image_dir, dataset=checked.dataset)
    records, bad_images = check_images(records, image_dir, checked.dataset, split, issues, progress=progress)
    skipped = issues.count - before
    if not records:
        after = f" after skipping {skipped} bad record(s)" if skipped else ""
        raise DataError(
            f"{ann_file}: no person instance with a labelled keypoint{after} "
            "(expected at least one non-crowd person annotation with a keypoint of visibility 1 or 2)"
        )
    used = ann_file
    if checked.dropped or bad_images:
        dataset = drop_images(checked.dataset, bad_images) if bad_images else checked.dataset
        used = Path(out_dir) / "annotations" / f"person_keypoints_{split}.checked.json"
        atomic_write_text(used, json.dumps(dataset, separators=(",", ":")))
    return KeypointSplit(records, image_dir, used, ann_file, skipped)
