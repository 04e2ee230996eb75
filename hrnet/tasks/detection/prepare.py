"""Detection's prepare stage: the COCO instances at ``data.root`` checked, and its index (no torch)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from hrnet.data.detection_records import (
    CategoryMap,
    DetectionSplit,
    categories_of,
    detection_records,
    in_folder,
)
from hrnet.data.formats.coco import load_coco
from hrnet.data.issues import IssueLog
from hrnet.data.validation import CheckedSplit, check_coco_split, locate_split
from hrnet.errors import MissingFileError
from hrnet.io import atomic_write_json
from hrnet.tasks.base import data_root, index_reference, prepared_index_path, read_index

log = logging.getLogger("hrnet.tasks.detection")


def masks_file(index_file: Path) -> Path:
    """Where the masks of the split indexed in ``index_file`` are kept: beside it, apart from the
    boxes, so that a box detector's run never reads them (COCO's polygons are most of its index)."""
    return index_file.with_suffix(".masks.json")


def write_split_index(path: Path, checked: CheckedSplit, split: str) -> None:
    """Writes the prepared index of one checked split: its records (boxes), categories and scoring
    file; each record's ``segmentations`` go to :func:`masks_file`, in the records' order."""
    categories = checked.categories
    assert categories is not None  # check_coco_split sets those of an instances file
    records = [{k: v for k, v in record.items() if k != "segmentations"} for record in checked.records]
    index: dict[str, Any] = {
        "task": "detection",
        "split": split,
        "ann_file": index_reference(checked.ann_file, path),
        "image_dir": index_reference(checked.image_dir, path),
        "categories": categories.label_names,
        "category_ids": list(categories.category_ids),
        "records": records,
    }
    if checked.skipped:
        index["skipped_records"] = checked.skipped
    masks = [record.get("segmentations") for record in checked.records]
    atomic_write_json(masks_file(path), {"segmentations": masks}, indent=None)
    atomic_write_json(path, index, indent=None)


def write_checked_index(path: Path, ann_file: Path, image_dir: Path, split: str) -> None:
    """The index of a split an earlier prepare stage checked already (its images are not read again)."""
    coco = load_coco(ann_file, "instances")
    checked = CheckedSplit(
        detection_records(coco), image_dir, ann_file, ann_file, categories=categories_of(coco)
    )
    write_split_index(path, checked, split)


def prepare(params: Any, out_dir: Path, issues: IssueLog) -> None:
    """Locates and checks the COCO-layout data at ``data.root`` (bad records go to ``issues``);
    writes the index of each split."""
    root = data_root(params)
    for role, split in (("train", params.data.train_split), ("val", params.data.val_split)):
        ann_file, image_dir = locate_split(params.data.source, root, split, "instances")
        checked = check_coco_split(
            ann_file, image_dir, "instances", split=role, out_dir=out_dir, issues=issues
        )
        write_split_index(prepared_index_path(out_dir, role), checked, split)
        log.info("%s: %d images from %s", role, len(checked.records), ann_file)


def read_split(prepared_dir: Path, role: str, *, with_masks: bool = False) -> DetectionSplit:
    """The prepared split of ``role`` ("train" or "val"): records with their image paths resolved;
    ``with_masks`` also gives each record its ``segmentations`` (see :func:`masks_file`)."""
    index = read_index(prepared_dir, role)
    names = index["categories"]
    categories = CategoryMap(
        tuple(index["category_ids"]), tuple(names[str(label)] for label in range(1, len(names) + 1))
    )
    records = in_folder(index["records"], index["image_dir"])
    if with_masks:
        path = masks_file(prepared_index_path(prepared_dir, role))
        if not path.is_file():
            raise MissingFileError(f"{path}: prepared masks not found (run the prepare stage)")
        masks = json.loads(path.read_text())["segmentations"]
        records = [{**record, "segmentations": seg} for record, seg in zip(records, masks, strict=True)]
    return DetectionSplit(records, categories, index["ann_file"])
