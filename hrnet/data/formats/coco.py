"""The one COCO annotation loader, for keypoint and instance files alike.

:func:`load_coco` reads a file, checks its top level (:func:`read_annotation_file`) and every
record (:mod:`hrnet.data.formats.coco_records`), and indexes what is kept the way pycocotools
does (:class:`CocoIndex`: images by id, each image's annotations in file order, categories by
id). Bad records go to the :class:`~hrnet.data.issues.IssueLog` it is given; a bad file raises.
:func:`coco_layout` says where a split's file and image folder are.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrnet.data.formats.coco_records import (
    PERSON_CATEGORY_ID,
    CocoKind,
    json_type,
    validate_records,
)
from hrnet.data.issues import IssueLog
from hrnet.data.keypoint_meta import keypoint_category
from hrnet.data.layouts import DataLayout
from hrnet.errors import DataError, MissingFileError
from hrnet.io import read_bytes

LAYOUT = DataLayout(
    "coco", "annotations/<person_keypoints|instances>_<split>2017.json and <split>2017/ images"
)

SOURCES = ("synthetic", "coco")
TOP_LEVEL_FIELDS = ("images", "annotations", "categories")
ANNOTATION_PREFIX: dict[str, str] = {"keypoints": "person_keypoints", "instances": "instances"}


def coco_layout(
    source: str, root: Path, split: str, *, must_exist: bool = True, annotations: str = "person_keypoints"
) -> tuple[Path, Path]:
    """(annotation file, image directory) of ``split`` for a dataset ``source`` under ``root``.

    ``synthetic``: ``annotations/{annotations}_{split}.json`` and ``images/{split}``;
    ``coco``: ``annotations/{annotations}_{split}2017.json`` and ``{split}2017``.
    """
    root = Path(root)
    if source == "synthetic":
        ann_file = root / "annotations" / f"{annotations}_{split}.json"
        image_dir = root / "images" / split
    elif source == "coco":
        ann_file = root / "annotations" / f"{annotations}_{split}2017.json"
        image_dir = root / f"{split}2017"
    else:
        raise DataError(f"unknown dataset source {source!r}; expected one of {', '.join(SOURCES)}")
    if must_exist:
        if not ann_file.is_file():
            raise MissingFileError(f"{ann_file}: annotation file not found ({source} layout)")
        if not image_dir.is_dir():
            raise MissingFileError(f"{image_dir}: image directory not found ({source} layout)")
    return ann_file, image_dir


def read_annotation_file(ann_file: Path, kind: CocoKind = "keypoints") -> dict[str, Any]:
    """Parses ``ann_file`` and checks its top level; every problem raises :class:`DataError`.

    A keypoint file must also list its keypoint category: one with its own ``keypoints`` names, or
    else COCO's person category (id 1), whose 17 keypoints are then assumed.
    """
    ann_file = Path(ann_file)
    expected = f"expected a COCO {kind} file: a JSON object with images, annotations and categories"
    raw = read_bytes(ann_file, "annotation file", expected)
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
        raise DataError(f"{ann_file}: the top level is a JSON {json_type(data)} ({expected})")
    for name in TOP_LEVEL_FIELDS:
        if name not in data:
            raise DataError(f"{ann_file}: missing top-level field {name!r} ({expected})")
        if not isinstance(data[name], list):
            raise DataError(
                f"{ann_file}: {name}: is a JSON {json_type(data[name])} (expected an array of objects)"
            )
    if kind == "keypoints":
        try:
            category = keypoint_category(data)
        except DataError as exc:
            raise DataError(f"{ann_file}: {exc}") from None
        listed = any(isinstance(c, dict) and c.get("id") == category["id"] for c in data["categories"])
        if not listed:
            raise DataError(
                f"{ann_file}: categories: no category with id {PERSON_CATEGORY_ID} and none listing "
                f"keypoints (expected COCO's person category, id {PERSON_CATEGORY_ID}, or one category "
                "with its own keypoints and skeleton)"
            )
    return data


@dataclass
class CocoIndex:
    """A checked COCO file, indexed as pycocotools does.

    ``imgs`` and ``cats`` map ids to entries, ``img_to_anns`` an image id to its annotations in
    file order; ``dataset`` is the content they index (the file without its dropped records)
    and ``dropped`` how many records were left out.
    """

    ann_file: Path
    dataset: dict[str, Any]
    dropped: int = 0
    imgs: dict[int, dict[str, Any]] = field(init=False)
    cats: dict[int, dict[str, Any]] = field(init=False)
    img_to_anns: dict[int, list[dict[str, Any]]] = field(init=False)

    def __post_init__(self) -> None:
        self.imgs = {image["id"]: image for image in self.dataset["images"]}
        self.cats = {category["id"]: category for category in self.dataset["categories"]}
        self.img_to_anns = defaultdict(list)
        for ann in self.dataset["annotations"]:
            self.img_to_anns[ann["image_id"]].append(ann)

    def image_ids(self) -> list[int]:
        """Every image id, in increasing order."""
        return sorted(self.imgs)

    def anns(self, image_id: int) -> list[dict[str, Any]]:
        """The annotations of image ``image_id`` in file order (none: an empty list)."""
        return self.img_to_anns.get(image_id, [])

    def without_images(self, image_ids: set[int]) -> dict[str, Any]:
        """The content without the images ``image_ids`` and their annotations."""
        return {
            **self.dataset,
            "images": [image for image in self.dataset["images"] if image["id"] not in image_ids],
            "annotations": [ann for ann in self.dataset["annotations"] if ann["image_id"] not in image_ids],
        }


def load_coco(
    ann_file: str | Path,
    kind: CocoKind,
    *,
    issues: IssueLog | None = None,
    split: str = "",
    person_box_geometry: bool = True,
) -> CocoIndex:
    """Reads and checks the COCO ``kind`` file ``ann_file``; bad records go to ``issues``.

    Without ``issues`` the first bad record raises (``on_bad_sample: fail``); ``split`` names the
    split in the issue report; ``person_box_geometry``: see :func:`validate_records`.
    """
    ann_file = Path(ann_file)
    issues = issues if issues is not None else IssueLog("fail")
    dataset = read_annotation_file(ann_file, kind)
    checked = validate_records(
        dataset, ann_file, split, issues, kind, person_box_geometry=person_box_geometry
    )
    return CocoIndex(ann_file, checked.dataset, checked.dropped)
