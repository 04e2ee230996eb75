"""The Cityscapes folder layout: which image/label pairs a split holds, and what is wrong with a pair.

Layout (as distributed)::

    root/leftImg8bit/{split}/<city>/<city>_<seq>_<frame>_leftImg8bit.png   (RGB PNG)
    root/gtFine/{split}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png     (8-bit grey PNG)

A missing or empty folder makes the split unusable and raises; a bad pair goes to the
:class:`~hrnet.data.issues.IssueLog` (record: the frame, ``<city>_<seq>_<frame>``).
"""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from hrnet.data.cityscapes import IMAGE_SUFFIX, LABEL_SUFFIX, label_ids_problem
from hrnet.data.issues import IssueLog
from hrnet.data.layouts import DataLayout
from hrnet.errors import DataError, MissingFileError

LAYOUT = DataLayout(
    "cityscapes",
    "leftImg8bit/<split>/<city>/*_leftImg8bit.png and gtFine/<split>/<city>/*_gtFine_labelIds.png",
)


def png_header(path: Path) -> tuple[int, int, int, int]:
    """``(width, height, bit_depth, color_type)`` from a PNG's IHDR chunk, without decoding."""
    with open(path, "rb") as handle:
        head = handle.read(26)
    if len(head) < 26 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise DataError(f"{path}: not a PNG file")
    width, height, depth, color = struct.unpack(">IIBB", head[16:26])
    return width, height, depth, color


def frame_name(image_path: Path) -> str:
    """``<city>_<seq>_<frame>`` of a ``leftImg8bit`` image."""
    return image_path.name[: -len(IMAGE_SUFFIX)]


def label_path_for(image_path: Path, root: Path, split: str) -> Path:
    """The ``gtFine`` labelIds file that belongs to a ``leftImg8bit`` image."""
    return root / "gtFine" / split / image_path.parent.name / f"{frame_name(image_path)}{LABEL_SUFFIX}"


def split_images(root: str | Path, split: str) -> list[Path]:
    """The sorted ``leftImg8bit`` images of ``split``; a missing folder or an empty split raises."""
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
    return images


def _header(path: Path) -> tuple[int, int, int, int] | str:
    try:
        return png_header(path)
    except DataError:
        return "not a PNG file (expected a PNG image)"
    except OSError as exc:
        return f"cannot read the file ({exc.strerror}) (expected a readable PNG file)"


def pair_problem(image_path: Path, label_path: Path, check_label_values: bool) -> tuple[Path, str] | None:
    """(file, why) when an image/label pair is unusable, else None.

    Reads the PNG headers: both PNGs, of the same size, the label 8-bit grey; with
    ``check_label_values`` the label is decoded and its ids checked against the Cityscapes table.
    """
    image_header, label_header = _header(image_path), _header(label_path)
    if isinstance(image_header, str):
        return image_path, image_header
    if isinstance(label_header, str):
        return label_path, label_header
    (iw, ih, _, _), (lw, lh, depth, color) = image_header, label_header
    if (depth, color) != (8, 0):
        return label_path, (
            f"label must be an 8-bit greyscale PNG (depth {depth}, colour type {color}) "
            "(expected a labelIds PNG)"
        )
    if (iw, ih) != (lw, lh):
        return label_path, f"label size {lw}x{lh} differs from image size {iw}x{ih} (expected equal sizes)"
    if check_label_values:
        label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
        if label is None or label.ndim != 2 or label.dtype != np.uint8:
            return label_path, "not a decodable 8-bit label image (expected a labelIds PNG)"
        problem = label_ids_problem(label)
        if problem:
            return label_path, f"{problem} (expected Cityscapes label ids)"
    return None


def list_cityscapes_pairs(
    root: str | Path,
    split: str,
    *,
    check_label_values: bool = False,
    issues: IssueLog | None = None,
    report_split: str | None = None,
) -> list[tuple[Path, Path]]:
    """Sorted ``(image, labelIds)`` pairs of ``split``.

    Every image must have its label file and pass :func:`pair_problem`. Bad pairs go to
    ``issues`` under ``report_split`` (default ``split``); without ``issues`` the first one raises
    (``FileNotFoundError`` for a missing label, else ``ValueError``), one line naming the file.
    """
    root = Path(root)
    issues = issues if issues is not None else IssueLog("fail")
    pairs = []
    for image_path in split_images(root, split):
        label_path = label_path_for(image_path, root, split)
        if not label_path.is_file():
            reason = f"label file not found (expected {label_path.name} for {image_path.name})"
            issues.add(
                report_split or split, label_path, frame_name(image_path), reason, error=MissingFileError
            )
            continue
        problem = pair_problem(image_path, label_path, check_label_values)
        if problem:
            issues.add(report_split or split, problem[0], frame_name(image_path), problem[1])
            continue
        pairs.append((image_path, label_path))
    return pairs
