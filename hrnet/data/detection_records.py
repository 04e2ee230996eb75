"""COCO instance files -> detection records (one per image) and the label <-> category mapping.

The file is read and checked by the one COCO loader (:func:`hrnet.data.formats.coco.load_coco`).
The same code reads the synthetic split (``annotations/instances_{split}.json``, ``images/{split}``)
and real COCO (``annotations/instances_{split}2017.json``, ``{split}2017``). Category ids are mapped
to contiguous labels ``1..C`` in increasing id order (label 0 is torchvision's background).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hrnet.data.formats.coco import CocoIndex, coco_layout, load_coco
from hrnet.data.issues import IssueLog

log = logging.getLogger(__name__)

MIN_BOX_SIDE = 1.0  # boxes whose clipped width or height is <= this are dropped


@dataclass(frozen=True)
class CategoryMap:
    """COCO categories in label order: label ``i`` (1-based) is ``category_ids[i - 1]``."""

    category_ids: tuple[int, ...]
    names: tuple[str, ...]

    @property
    def num_classes(self) -> int:
        return len(self.category_ids)

    @property
    def label_to_category(self) -> dict[int, int]:
        return {i + 1: c for i, c in enumerate(self.category_ids)}

    @property
    def category_to_label(self) -> dict[int, int]:
        return {c: i + 1 for i, c in enumerate(self.category_ids)}

    @property
    def label_names(self) -> dict[int, str]:
        return {i + 1: n for i, n in enumerate(self.names)}


@dataclass
class DetectionSplit:
    """A loaded split: its records (``file_name`` a path to read), categories and the file to score with."""

    records: list[dict]
    categories: CategoryMap
    ann_file: Path


def detection_layout(
    source: str, root: str | Path, split: str, *, must_exist: bool = True
) -> tuple[Path, Path]:
    """(annotation file, image directory) of ``split`` for ``source`` ("synthetic" or "coco")."""
    return coco_layout(source, Path(root), split, must_exist=must_exist, annotations="instances")


def categories_of(coco: CocoIndex) -> CategoryMap:
    """The label <-> COCO category mapping of a loaded instances file."""
    cats = sorted(coco.cats.values(), key=lambda c: c["id"])
    return CategoryMap(tuple(int(c["id"]) for c in cats), tuple(str(c.get("name", c["id"])) for c in cats))


def read_categories(ann_file: str | Path) -> CategoryMap:
    """The label <-> COCO category mapping of ``ann_file``."""
    return categories_of(load_coco(ann_file, "instances"))


def clip_box(bbox: Sequence[float], width: int, height: int) -> list[float] | None:
    """COCO ``[x, y, w, h]`` clipped to the image as xyxy; None when a side is <= ``MIN_BOX_SIDE``."""
    x, y, w, h = (float(v) for v in bbox)
    x1, y1 = min(max(x, 0.0), width), min(max(y, 0.0), height)
    x2, y2 = min(max(x + w, 0.0), width), min(max(y + h, 0.0), height)
    if x2 - x1 <= MIN_BOX_SIDE or y2 - y1 <= MIN_BOX_SIDE:
        return None
    return [x1, y1, x2, y2]


def detection_records(coco: CocoIndex, *, drop_empty: bool = False) -> list[dict]:
    """One record per image of a loaded instances file, in id order.

    Record: ``image_id``, ``file_name`` (as in the file: relative to the image folder), ``width``,
    ``height``, ``boxes`` (xyxy, clipped), ``labels`` (1..C), ``category_ids`` and
    ``segmentations`` (each box's COCO ``segmentation`` as in the file, polygons or RLE, None where
    it has none; decoded only by mask runs). Crowd annotations and boxes with a clipped side <= 1 px
    (COCO train2017 has two of height 0) are skipped, their masks with them (COCOeval reads the crowd
    regions from the annotation file itself); ``drop_empty`` leaves out images with no box left.
    """
    to_label = categories_of(coco).category_to_label
    records, dropped = [], 0
    for image_id in coco.image_ids():
        image = coco.imgs[image_id]
        boxes, cats, segmentations = [], [], []
        for ann in coco.anns(image_id):
            if ann.get("iscrowd", 0):
                continue
            box = clip_box(ann["bbox"], image["width"], image["height"])
            if box is None:
                dropped += 1
                continue
            boxes.append(box)
            cats.append(int(ann["category_id"]))
            segmentations.append(ann.get("segmentation") or None)
        if drop_empty and not boxes:
            continue
        records.append(
            {
                "image_id": int(image_id),
                "file_name": str(image["file_name"]),
                "width": int(image["width"]),
                "height": int(image["height"]),
                "boxes": boxes,
                "labels": [to_label[c] for c in cats],
                "category_ids": cats,
                "segmentations": segmentations,
            }
        )
    if dropped:
        log.info(
            "%s: dropped %d boxes with a side <= %s px after clipping", coco.ann_file, dropped, MIN_BOX_SIDE
        )
    return records


def in_folder(records: list[dict], image_dir: str | Path) -> list[dict]:
    """``records`` with each ``file_name`` joined to ``image_dir`` (the path the dataset reads)."""
    return [{**record, "file_name": str(Path(image_dir) / record["file_name"])} for record in records]


def load_detection_split(
    ann_file: str | Path,
    image_dir: str | Path,
    *,
    drop_empty: bool = False,
    issues: IssueLog | None = None,
    split: str = "",
) -> tuple[list[dict], CategoryMap]:
    """Records (``file_name`` under ``image_dir``) and the category mapping of one split.

    Bad records go to ``issues`` (without one, the first raises); see :func:`detection_records`.
    """
    coco = load_coco(ann_file, "instances", issues=issues, split=split)
    return in_folder(detection_records(coco, drop_empty=drop_empty), image_dir), categories_of(coco)


def load_detection_records(
    ann_file: str | Path, image_dir: str | Path, *, drop_empty: bool = False
) -> list[dict]:
    """The records of :func:`load_detection_split`."""
    return load_detection_split(ann_file, image_dir, drop_empty=drop_empty)[0]


def missing_masks(records: Sequence[dict]) -> tuple[int, int]:
    """(boxes without a ``segmentation``, boxes) over ``records``; a record indexed before masks
    were kept has no ``segmentations`` and counts all its boxes as missing."""
    missing = total = 0
    for record in records:
        segmentations = record.get("segmentations") or [None] * len(record["boxes"])
        missing += sum(s is None for s in segmentations)
        total += len(record["boxes"])
    return missing, total
