"""Cityscapes layout reader and the labelId -> trainId mapping.

Layout (as distributed)::

    root/leftImg8bit/{split}/<city>/<city>_<seq>_<frame>_leftImg8bit.png   (RGB PNG)
    root/gtFine/{split}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png     (8-bit grey PNG)

Every table here is derived from ``cityscapesscripts.helpers.labels``: label ids whose train id is
255 (or -1) map to the ignore index, the 19 evaluated classes map to train ids 0..18.
"""

from __future__ import annotations

import struct
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


def check_label_ids(label: np.ndarray, path: str | Path) -> None:
    """Raise ``ValueError`` naming ``path`` when ``label`` holds ids outside the Cityscapes table."""
    top = int(label.max()) if label.size else 0
    if KNOWN_LABEL_IDS[: top + 1].all():  # fast path: every id up to the maximum is known
        return
    present = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    bad = [int(v) for v in present if not KNOWN_LABEL_IDS[v]]
    if bad:
        raise DataError(f"{path}: label ids {bad} are not in the Cityscapes label table")


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


def png_header(path: Path) -> tuple[int, int, int, int]:
    """``(width, height, bit_depth, color_type)`` from a PNG's IHDR chunk, without decoding."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise DataError(f"{path}: not a PNG file")
    width, height, depth, color = struct.unpack(">IIBB", head[16:26])
    return width, height, depth, color


def label_path_for(image_path: Path, root: Path, split: str) -> Path:
    """The ``gtFine`` labelIds file that belongs to a ``leftImg8bit`` image."""
    stem = image_path.name[: -len(IMAGE_SUFFIX)]
    return root / "gtFine" / split / image_path.parent.name / f"{stem}{LABEL_SUFFIX}"


def list_cityscapes_pairs(
    root: str | Path, split: str, *, check_label_values: bool = False
) -> list[tuple[Path, Path]]:
    """Sorted ``(image, labelIds)`` pairs of ``split``.

    Checks (each failure is a one-line ``FileNotFoundError``/``ValueError`` naming the path):
    the root and split folders exist, the split holds images, every image has its label file,
    both are PNGs of the same size (read from the headers) and the label is 8-bit grey. With
    ``check_label_values`` every label is decoded and its ids checked against the Cityscapes
    table (the dataset does that check anyway when it loads a label).
    """
    root = Path(root)
    if not root.is_dir():
        raise MissingFileError(f"{root}: Cityscapes root not found")
    image_dir, label_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise MissingFileError(f"{folder}: split folder not found")
    images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise DataError(f"{image_dir}: no <city>/*{IMAGE_SUFFIX} files")
    pairs = []
    for image_path in images:
        label_path = label_path_for(image_path, root, split)
        if not label_path.is_file():
            raise MissingFileError(f"{label_path}: label file not found (for {image_path.name})")
        iw, ih, _, _ = png_header(image_path)
        lw, lh, depth, color = png_header(label_path)
        if (depth, color) != (8, 0):
            raise DataError(
                f"{label_path}: label must be an 8-bit greyscale PNG (depth {depth}, colour type {color})"
            )
        if (iw, ih) != (lw, lh):
            raise DataError(f"{label_path}: label size {lw}x{lh} differs from image size {iw}x{ih}")
        if check_label_values:
            read_label_ids(label_path)
        pairs.append((image_path, label_path))
    return pairs
