"""Person detections in the COCO results format, read and checked for top-down pose evaluation.

The file is what a detector's COCO evaluation takes (for example the official
``COCO_val2017_detections_AP_H_56_person.json``): a JSON list of
``{"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float}``; other keys are
ignored. As in the official evaluation, only ``category_id`` 1 (person) is used and boxes scoring
below the threshold are left out. Any malformed entry is refused with one line naming the file,
the entry and the field.
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hrnet.errors import DataError
from hrnet.io import read_json

PERSON_CATEGORY_ID = 1
EXPECTED = 'a JSON list of {"image_id", "category_id", "bbox": [x, y, w, h], "score"} (COCO results)'


@dataclass(frozen=True)
class PersonBoxes:
    """The boxes used: ``image_ids`` (M,), ``boxes`` (M, 4) as ``[x, y, w, h]``, ``scores`` (M,)."""

    image_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    num_entries: int  # every entry of the file, before the category and score filters
    num_other_categories: int
    num_below_threshold: int


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_entry(path: Path, i: int, entry: Any, image_ids: Collection[int]) -> None:
    where = f"{path}: entry {i}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: expected an object, got {type(entry).__name__} (expected {EXPECTED})")
    for key in ("image_id", "category_id", "bbox", "score"):
        if key not in entry:
            raise DataError(f"{where}: no {key!r} field (expected {EXPECTED})")
    for key in ("image_id", "category_id"):
        if not isinstance(entry[key], int) or isinstance(entry[key], bool):
            raise DataError(f"{where}: {key} is {entry[key]!r} (expected an integer id)")
    if entry["image_id"] not in image_ids:
        raise DataError(f"{where}: image_id {entry['image_id']} is not an image of the evaluated split")
    bbox = entry["bbox"]
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
        raise DataError(f"{where}: bbox is {bbox!r} (expected 4 finite numbers [x, y, w, h])")
    if bbox[2] <= 0 or bbox[3] <= 0:
        raise DataError(f"{where}: bbox {bbox!r} has no area (expected width and height > 0)")
    if not _number(entry["score"]):
        raise DataError(f"{where}: score is {entry['score']!r} (expected a finite number)")


def read_person_detections(
    path: str | Path, image_ids: Collection[int], score_threshold: float = 0.0
) -> PersonBoxes:
    """The person boxes of ``path`` on ``image_ids`` (the evaluated split), scoring >= ``score_threshold``.

    Raises ``FileNotFoundError`` or ``ValueError`` with one line naming the file and the field.
    """
    path = Path(path)
    entries = read_json(path, f"person detections file not found (expected {EXPECTED})")
    if not isinstance(entries, list):
        raise DataError(f"{path}: top level is a JSON {type(entries).__name__} (expected {EXPECTED})")
    known = set(image_ids)
    kept: list[dict] = []
    other = below = 0
    for i, entry in enumerate(entries):
        _check_entry(path, i, entry, known)
        if entry["category_id"] != PERSON_CATEGORY_ID:
            other += 1
        elif entry["score"] < score_threshold:
            below += 1
        else:
            kept.append(entry)
    return PersonBoxes(
        image_ids=np.array([e["image_id"] for e in kept], dtype=np.int64),
        boxes=np.array([e["bbox"] for e in kept], dtype=np.float64).reshape(-1, 4),
        scores=np.array([e["score"] for e in kept], dtype=np.float64),
        num_entries=len(entries),
        num_other_categories=other,
        num_below_threshold=below,
    )
