"""Checks a COCO split (keypoints for pose, instances for detection) before prepare indexes it.

In order: the annotation file and every record (the COCO loader, :func:`load_coco`), then every
image file a kept record needs (:func:`check_images`). Bad records and images go to the
:class:`~hrnet.data.issues.IssueLog` given; when some were skipped, the annotation file without
them is written next to the index so that evaluation scores exactly what was indexed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hrnet.data.coco_reader import load_person_instances
from hrnet.data.detection_records import CategoryMap, categories_of, detection_records
from hrnet.data.formats.coco import ANNOTATION_PREFIX, CocoIndex, load_coco
from hrnet.data.formats.coco_records import CocoKind
from hrnet.data.issues import IssueLog
from hrnet.data.validation.image_files import check_images
from hrnet.errors import DataError
from hrnet.io import atomic_write_text

NOTHING_LEFT = {
    "keypoints": (
        "no person instance with a labelled keypoint",
        "at least one non-crowd person annotation with a keypoint of visibility 1 or 2",
    ),
    "instances": ("no image", "at least one image entry with a readable image file"),
}


@dataclass
class CheckedSplit:
    """A checked split: the records to index and the annotation file that matches them."""

    records: list[dict[str, Any]]
    image_dir: Path
    ann_file: Path  # the input file, or a copy without the skipped records (for evaluation)
    source_ann_file: Path
    skipped: int = 0
    categories: CategoryMap | None = None  # instances only


def _people(coco: CocoIndex, image_dir: Path) -> list[dict[str, Any]]:
    return load_person_instances(coco.ann_file, image_dir, coco=coco)


def _images(coco: CocoIndex, image_dir: Path) -> list[dict[str, Any]]:
    return detection_records(coco)


# kind -> (records to index, the record key naming the image file)
RECORDS: dict[str, tuple[Callable[[CocoIndex, Path], list[dict[str, Any]]], str]] = {
    "keypoints": (_people, "image_file"),  # person instances, see hrnet.data.coco_reader
    "instances": (_images, "file_name"),  # one per image, see hrnet.data.detection_records
}


def check_coco_split(
    ann_file: Path,
    image_dir: Path,
    kind: CocoKind,
    *,
    split: str,
    out_dir: Path,
    issues: IssueLog,
    progress: bool = True,
) -> CheckedSplit:
    """Reads and checks a COCO split of ``kind``; returns the records to index (pose: person
    instances; detection: every image, with the file's categories).

    When records were skipped, the annotation file without them is written to
    ``out_dir/annotations/<person_keypoints|instances>_<split>.checked.json`` and returned as
    ``ann_file``.
    """
    ann_file, image_dir = Path(ann_file), Path(image_dir)
    records_of, file_key = RECORDS[kind]
    issues.start(split)
    before = issues.count
    coco = load_coco(ann_file, kind, issues=issues, split=split)
    records = records_of(coco, image_dir)
    files = {record["image_id"]: record[file_key] for record in records}
    sizes = {image_id: (int(image["width"]), int(image["height"])) for image_id, image in coco.imgs.items()}
    bad_images = check_images(files, image_dir, sizes, split, issues, progress=progress)
    records = [record for record in records if record["image_id"] not in bad_images]
    skipped = issues.count - before
    if not records:
        what, expected = NOTHING_LEFT[kind]
        after = f" after skipping {skipped} bad record(s)" if skipped else ""
        raise DataError(f"{ann_file}: {what}{after} (expected {expected})")
    used = ann_file
    if coco.dropped or bad_images:
        dataset = coco.without_images(bad_images) if bad_images else coco.dataset
        used = Path(out_dir) / "annotations" / f"{ANNOTATION_PREFIX[kind]}_{split}.checked.json"
        atomic_write_text(used, json.dumps(dataset, separators=(",", ":")))
    categories = categories_of(coco) if kind == "instances" else None
    return CheckedSplit(records, image_dir, used, ann_file, skipped, categories)
