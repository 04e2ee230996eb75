"""The Cityscapes label table: labelId -> trainId mapping, class names and colours, label files.

The folder layout is read by :mod:`hrnet.data.formats.cityscapes`.

Every table here is derived from ``cityscapesscripts.helpers.labels``: label ids whose train id is
255 (or -1) map to the ignore index, the 19 evaluated classes map to train ids 0..18.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from hrnet.data.class_table import IGNORE_INDEX, cityscapes_table
from hrnet.errors import DataError, MissingFileError

IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"

TABLE = cityscapes_table()
NUM_CLASSES = TABLE.num_classes
CLASS_NAMES: tuple[str, ...] = TABLE.names
CLASS_COLORS = np.array(TABLE.colors, dtype=np.uint8)  # (19, 3) RGB
TRAIN_ID_TO_LABEL_ID = np.array(TABLE.values, dtype=np.uint8)
# True for every label id that appears in the Cityscapes table (ids 0..33; license plate is -1).
KNOWN_LABEL_IDS = TABLE.known_values()
assert NUM_CLASSES == 19 and IGNORE_INDEX == 255


def label_id_lut(ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """256-entry uint8 table: ``lut[label_id]`` is the train id (``ignore_index`` if not evaluated)."""
    return TABLE.lut(ignore_index)


def label_ids_problem(label: np.ndarray) -> str | None:
    """Why ``label`` holds ids outside the Cityscapes table, or None."""
    bad = TABLE.unknown_values(label)
    return f"label ids {bad} are not in the Cityscapes label table" if bad else None


def check_label_ids(label: np.ndarray, path: str | Path) -> None:
    """Raise ``ValueError`` naming ``path`` when ``label`` holds ids outside the Cityscapes table."""
    problem = label_ids_problem(label)
    if problem:
        raise DataError(f"{path}: {problem}")


def read_label_ids(path: str | Path, check: bool = True) -> np.ndarray:
    """Decode a labelIds PNG to a (H, W) uint8 array; bad files raise one-line errors. ``check``:
    its ids must be in the Cityscapes table (other layouts check against their own table)."""
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
    if check:
        check_label_ids(label, path)
    return label
