"""The Cityscapes label table: labelId -> trainId mapping, class names and colours, label files.

The folder layout is read by :mod:`hrnet.data.formats.cityscapes`.

Every table here is derived from ``cityscapesscripts.helpers.labels``: label ids whose train id is
255 (or -1) map to the ignore index, the 19 evaluated classes map to train ids 0..18.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from cityscapesscripts.helpers.labels import labels as _CS_LABELS

from hrnet.errors import DataError, MissingFileError

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
IGNORE_INDEX = 255

_EVAL_LABELS = sorted((lb for lb in _CS_LABELS if 0 <= lb.trainId < 255), key=lambda lb: lb.trainId)
NUM_CLASSES = len(_EVAL_LABELS)
CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in _EVAL_LABELS)
CLASS_COLORS = np.array([lb.color for lb in _EVAL_LABELS], dtype=np.uint8)  # (19, 3) RGB
TRAIN_ID_TO_LABEL_ID = np.array([lb.id for lb in _EVAL_LABELS], dtype=np.uint8)
# True for every label id that appears in the Cityscapes table (ids 0..33; license plate is -1).
KNOWN_LABEL_IDS = np.zeros(256, dtype=bool)
KNOWN_LABEL_IDS[[lb.id for lb in _CS_LABELS if lb.id >= 0]] = True
assert NUM_CLASSES == 19 and list(range(19)) == [lb.trainId for lb in _EVAL_LABELS]


def label_id_lut(ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """256-entry uint8 table: ``lut[label_id]`` is the train id (``ignore_index`` if not evaluated)."""
    if not 0 <= ignore_index <= 255 or ignore_index < NUM_CLASSES:
        raise ValueError(f"ignore_index must be in [{NUM_CLASSES}, 255], got {ignore_index}")
    lut = np.full(256, ignore_index, dtype=np.uint8)
    for lb in _EVAL_LABELS:
        lut[lb.id] = lb.trainId
    return lut


def label_ids_problem(label: np.ndarray) -> str | None:
    """Why ``label`` holds ids outside the Cityscapes table, or None."""
    top = int(label.max()) if label.size else 0
    if KNOWN_LABEL_IDS[: top + 1].all():  # fast path: every id up to the maximum is known
        return None
    present = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    bad = [int(v) for v in present if not KNOWN_LABEL_IDS[v]]
    return f"label ids {bad} are not in the Cityscapes label table" if bad else None


def check_label_ids(label: np.ndarray, path: str | Path) -> None:
    """Raise ``ValueError`` naming ``path`` when ``label`` holds ids outside the Cityscapes table."""
    problem = label_ids_problem(label)
    if problem:
        raise DataError(f"{path}: {problem}")


def read_label_ids(path: str | Path) -> np.ndarray:
    """Decode a labelIds PNG to a (H, W) uint8 array; bad files raise one-line errors."""
    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: label file not found")
    label = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if label is None:
        raise DataError(f"{path}: not a decodable label image")
    if label.ndim != 2 or label.dtype != np.uint8:
        raise DataError(
            f"{path}: label must be a single-channel 8-bit PNG, got shape {label.shape} {label.dtype}"
        )
    check_label_ids(label, path)
    return label
