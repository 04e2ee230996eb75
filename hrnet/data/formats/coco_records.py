"""The record checks of a COCO annotation file: image entries, annotations and categories.

Both kinds of COCO file go through :func:`validate_records`; they differ in what an annotation
must hold:

- ``"keypoints"`` (``person_keypoints_*.json``): every annotation ``id``, ``image_id`` and
  ``category_id``; an instance of the keypoint category (the one listing ``keypoints``, else COCO's
  person, id 1, with its 17) also ``bbox``, ``area``, ``iscrowd`` and ``keypoints`` of Kx3
  numbers (K the category's keypoint count) with visibility 0/1/2, and its box must have a
  positive size and overlap its image (a box that only sticks out is clipped later, as in the reference code);
- ``"instances"`` (``instances_*.json``): ``id``, ``image_id``, ``category_id`` of a listed
  category and a ``bbox`` of 4 finite numbers with no negative side (COCO train2017 holds boxes
  of height 0, which the detection records drop); a ``segmentation``, where given, must be polygons
  (lists of x, y numbers) or an RLE (``size`` [height, width] of the image, ``counts``).

Every problem is one line ``<record>: <what is wrong> (expected <what would be right>)`` handed
to the :class:`~hrnet.data.issues.IssueLog`, which raises or lets the record be dropped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from hrnet.data.issues import IssueLog
from hrnet.data.keypoint_meta import keypoint_category
from hrnet.errors import DataError

CocoKind = Literal["keypoints", "instances"]

PERSON_CATEGORY_ID = 1
IMAGE_FIELDS = ("id", "file_name", "width", "height")
ANNOTATION_FIELDS = ("id", "image_id", "category_id")
PERSON_FIELDS = (*ANNOTATION_FIELDS, "bbox", "area", "iscrowd", "keypoints")
INSTANCE_FIELDS = (*ANNOTATION_FIELDS, "bbox")


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type ("array", "object", ...), for messages."""
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


def _image_problem(entry: dict[str, Any], seen: set[int]) -> str | None:
    missing = _missing(entry, IMAGE_FIELDS)
    if missing:
        return missing
    image_id, name = entry["id"], entry["file_name"]
    if not _is_int(image_id):
        return f"id is {_show(image_id)} (expected an integer)"
    if image_id in seen:
        return "duplicate image id (expected each image id once)"
    # file_name is joined to the image folder: an absolute path or ".." would read outside it
    if (
        not isinstance(name, str)
        or not name
        or name.startswith(("/", "\\"))
        or ".." in PurePosixPath(name.replace("\\", "/")).parts
    ):
        return f"file_name is {_show(name)} (expected a file name inside the split's image folder)"
    for key in ("width", "height"):
        value = entry[key]
        if not (_is_number(value) and float(value).is_integer() and value > 0):
            return f"{key} is {_show(value)} (expected a positive integer)"
    return None


def _box_numbers(bbox: Any) -> str | None:
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        return f"bbox is {_show(bbox)} (expected [x, y, width, height]: 4 finite numbers)"
    return None


def _person_box_problem(bbox: Any, width: int, height: int) -> str | None:
    problem = _box_numbers(bbox)
    if problem:
        return problem
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        return f"bbox {_show(bbox)} has a non-positive size {w:g}x{h:g} (expected width > 0 and height > 0)"
    if x >= width or y >= height or x + w <= 0 or y + h <= 0:
        return (
            f"bbox {_show(bbox)} lies outside the {width}x{height} image "
            "(expected a box overlapping the image)"
        )
    return None


def _instance_box_problem(bbox: Any) -> str | None:
    problem = _box_numbers(bbox)
    if problem:
        return problem
    w, h = float(bbox[2]), float(bbox[3])
    if w < 0 or h < 0:
        return f"bbox {_show(bbox)} has a negative size {w:g}x{h:g} (expected width >= 0 and height >= 0)"
    return None


SEGMENTATION_EXPECTED = (
    "expected polygons [[x1, y1, x2, y2, ...], ...] or an RLE {size: [height, width], counts: ...}"
)


def _segmentation_problem(segmentation: Any, image: dict[str, Any]) -> str | None:
    """What is wrong with an instance's ``segmentation`` (None when it decodes)."""
    if isinstance(segmentation, list):
        for polygon in segmentation:
            if not (isinstance(polygon, list) and len(polygon) % 2 == 0 and all(map(_is_number, polygon))):
                return f"segmentation polygon {_show(polygon)} is not x, y numbers ({SEGMENTATION_EXPECTED})"
        return None
    if isinstance(segmentation, dict):
        size, counts = segmentation.get("size"), segmentation.get("counts")
        if size != [image["height"], image["width"]]:
            return f"segmentation RLE size is {_show(size)} ({SEGMENTATION_EXPECTED} of its image)"
        if not (isinstance(counts, str) or (isinstance(counts, list) and all(map(_is_int, counts)))):
            return f"segmentation RLE counts is a JSON {json_type(counts)} ({SEGMENTATION_EXPECTED})"
        return None
    return f"segmentation is a JSON {json_type(segmentation)} ({SEGMENTATION_EXPECTED})"


def _keypoints_problem(keypoints: Any, count: int) -> str | None:
    expected = f"expected {count}x3 = {3 * count} numbers: x, y, visibility per joint"
    if not isinstance(keypoints, list):
        return f"keypoints is a JSON {json_type(keypoints)} ({expected})"
    if len(keypoints) != 3 * count:
        return f"keypoints has {len(keypoints)} values ({expected})"
    if not all(map(_is_number, keypoints)):
        index, value = next((i, v) for i, v in enumerate(keypoints) if not _is_number(v))
        return f"keypoints[{index}] is {_show(value)} ({expected})"
    for joint in range(count):
        visibility = keypoints[3 * joint + 2]
        if visibility not in (0, 1, 2):
            where = f"keypoints[{3 * joint + 2}] (visibility of joint {joint})"
            return f"{where} is {visibility:g} (expected 0, 1 or 2)"
    return None


def _person_problem(ann: dict[str, Any], image: dict[str, Any], box_geometry: bool, count: int) -> str | None:
    area, crowd = ann["area"], ann["iscrowd"]
    if not (_is_number(area) and area >= 0):
        return f"area is {_show(area)} (expected a number >= 0)"
    if crowd not in (0, 1):
        return f"iscrowd is {_show(crowd)} (expected 0 or 1)"
    box = (
        _person_box_problem(ann["bbox"], int(image["width"]), int(image["height"]))
        if box_geometry
        else _box_numbers(ann["bbox"])
    )
    return box or _keypoints_problem(ann["keypoints"], count)


def _annotation_problem(
    ann: dict[str, Any],
    kind: CocoKind,
    images: dict[int, dict[str, Any]],
    categories: set[int],
    seen: set[int],
    box_geometry: bool,
    keypoint_category: tuple[int, int] = (PERSON_CATEGORY_ID, 17),
) -> str | None:
    person = kind == "keypoints" and ann.get("category_id") == keypoint_category[0]
    required = INSTANCE_FIELDS if kind == "instances" else PERSON_FIELDS if person else ANNOTATION_FIELDS
    missing = _missing(ann, required)
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
    if kind == "instances":
        if ann["category_id"] not in categories:
            return (
                f"category_id {ann['category_id']} is not in 'categories' "
                "(expected the id of a category entry)"
            )
        problem = _instance_box_problem(ann["bbox"])
        if problem is None and ann.get("segmentation") is not None:
            problem = _segmentation_problem(ann["segmentation"], image)
        return problem
    return _person_problem(ann, image, box_geometry, keypoint_category[1]) if person else None


def category_ids(ann_file: Path, categories: list[Any]) -> set[int]:
    """The ids of ``categories``; a malformed or repeated entry raises (no record can do without it)."""
    ids: set[int] = set()
    for index, entry in enumerate(categories):
        if not isinstance(entry, dict):
            problem = f"is a JSON {json_type(entry)} (expected an object with an integer id and a name)"
        elif not _is_int(entry.get("id")):
            problem = f"id is {_show(entry.get('id'))} (expected an integer)"
        elif entry["id"] in ids:
            problem = f"duplicate category id {entry['id']} (expected each category id once)"
        else:
            ids.add(entry["id"])
            continue
        raise DataError(f"{ann_file}: categories[{index}]: {problem}")
    return ids


@dataclass
class CheckedRecords:
    """What :func:`validate_records` kept; ``dataset`` is the input itself when nothing was dropped."""

    dataset: dict[str, Any]
    dropped: int = 0


@dataclass
class _Pass:
    """One pass over a file's records: reports problems to the log and counts what it drops."""

    ann_file: Path
    split: str
    issues: IssueLog
    dropped: int = 0

    def drop(self, record: str, problem: str | None = None, record_id: int | None = None) -> None:
        """Drops a record, reporting ``problem`` (None: already reported, as its image)."""
        if problem is not None:
            self.issues.add(self.split, self.ann_file, record, problem, record_id)
        self.dropped += 1

    def objects(self, dataset: dict[str, Any], name: str) -> Iterator[tuple[int, dict[str, Any]]]:
        """``(index, entry)`` of the JSON objects in ``dataset[name]``; any other entry is dropped."""
        for index, entry in enumerate(dataset[name]):
            if isinstance(entry, dict):
                yield index, entry
            else:
                self.drop(f"{name}[{index}]", f"is a JSON {json_type(entry)} (expected an object)")


def validate_records(
    dataset: dict[str, Any],
    ann_file: Path,
    split: str,
    issues: IssueLog,
    kind: CocoKind = "keypoints",
    *,
    person_box_geometry: bool = True,
) -> CheckedRecords:
    """Checks every image entry and annotation of a parsed COCO file (see the module docstring).

    Without ``person_box_geometry`` a person box need only be 4 numbers: the reference reader
    drops one of no size or outside its image silently, which the prepare stage reports instead.
    """
    categories = category_ids(ann_file, dataset["categories"]) if kind == "instances" else set()
    listing = keypoint_category(dataset) if kind == "keypoints" else {"id": 0, "keypoints": []}
    keypoints = (listing["id"], len(listing["keypoints"]))
    check = _Pass(ann_file, split, issues)
    images: dict[int, dict[str, Any]] = {}
    seen_images: set[int] = set()
    bad_images: set[int] = set()  # ids whose (only) entry was reported: their annotations go too
    for index, entry in check.objects(dataset, "images"):
        record, record_id = _record("image", index, entry)
        problem = _image_problem(entry, seen_images)
        if record_id is not None:
            seen_images.add(record_id)
        if problem:
            check.drop(record, problem, record_id)
            if record_id is not None and record_id not in images:
                bad_images.add(record_id)
            continue
        images[entry["id"]] = entry
    kept: list[dict[str, Any]] = []
    seen: set[int] = set()
    for index, ann in check.objects(dataset, "annotations"):
        record, record_id = _record("annotation", index, ann)
        if _is_int(ann.get("image_id")) and ann["image_id"] in bad_images:
            check.drop(record)
            continue
        problem = _annotation_problem(ann, kind, images, categories, seen, person_box_geometry, keypoints)
        if problem:
            check.drop(record, problem, record_id)
            continue
        seen.add(ann["id"])
        kept.append(ann)
    if not check.dropped:
        return CheckedRecords(dataset)
    return CheckedRecords({**dataset, "images": list(images.values()), "annotations": kept}, check.dropped)
