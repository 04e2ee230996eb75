"""What the segmentation layouts other than Cityscapes share: a split is a set of records (an id
or a file stem), each an image and a label PNG of label values, checked against the layout's
:class:`~hrnet.data.class_table.ClassTable`.

A layout lists its records (:class:`SplitListing`): the pairs, and the images without a label,
labels without an image and listed ids without their files it found. :func:`check_listing` puts
every bad record in the :class:`~hrnet.data.issues.IssueLog` (one line: the file, the record,
what is wrong and what was expected) and returns the usable pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from hrnet.data.class_table import ClassTable
from hrnet.data.formats.cityscapes import png_header
from hrnet.data.issues import IssueLog
from hrnet.data.validation.image_files import check_images
from hrnet.errors import DataError, MissingFileError


@dataclass
class SplitListing:
    """A split as a layout found it on disk. ``missing``: (record, the file that should exist, why)."""

    pairs: dict[str, tuple[Path, Path]] = field(default_factory=dict)
    missing: list[tuple[str, Path, str]] = field(default_factory=list)


def read_id_list(path: Path) -> list[str]:
    """The ids of a split list (one a line; blank lines skipped); a missing list raises."""
    if not path.is_file():
        raise MissingFileError(f"{path}: split list not found (expected one image id a line)")
    ids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not ids:
        raise DataError(f"{path}: empty split list (expected one image id a line)")
    return ids


def listed_pairs(ids: list[str], image_of, label_of, list_file: Path) -> SplitListing:  # noqa: ANN001
    """The pairs of the ``ids`` a split list names (``image_of(id)``, ``label_of(id)``); an id
    without its image or label file is a missing record."""
    listing = SplitListing()
    for record in ids:
        image, label = image_of(record), label_of(record)
        if not image.is_file():
            listing.missing.append(
                (record, image, f"image file not found (expected it for the id listed in {list_file})")
            )
        elif not label.is_file():
            listing.missing.append(
                (record, label, f"label file not found (expected it for the id listed in {list_file})")
            )
        else:
            listing.pairs[record] = (image, label)
    return listing


def label_problem(label_path: Path, image_size: tuple[int, int], table: ClassTable) -> str | None:
    """Why a label PNG cannot go with an image of ``image_size`` (w, h) under ``table``, or None."""
    try:
        width, height, depth, color = png_header(label_path)
    except DataError:
        return "not a PNG file (expected an 8-bit greyscale label PNG)"
    if (depth, color) != (8, 0):
        found = f"depth {depth}, colour type {color}"
        return f"label must be an 8-bit greyscale PNG ({found}) (expected label values)"
    if (width, height) != image_size:
        iw, ih = image_size
        return f"label size {width}x{height} differs from image size {iw}x{ih} (expected equal sizes)"
    label = cv2.imread(str(label_path), cv2.IMREAD_UNCHANGED)
    if label is None or label.ndim != 2 or label.dtype != np.uint8:
        return "not a decodable 8-bit label image (expected label values)"
    problem = table.values_problem(label)
    return f"{problem} (expected values of the class table)" if problem else None


def check_listing(
    listing: SplitListing,
    table: ClassTable,
    *,
    role: str,
    issues: IssueLog,
    root: Path,
    progress: bool = True,
) -> list[tuple[Path, Path]]:
    """The usable ``(image, label)`` pairs (files under ``root``), sorted by record; bad records go
    to ``issues``."""
    issues.start(role)
    before = issues.count
    for record, path, reason in listing.missing:
        issues.add(role, path, record, reason, error=MissingFileError)
    files = {record: str(image.relative_to(root)) for record, (image, _) in listing.pairs.items()}
    bad = check_images(files, root, {}, role, issues, progress=progress, record=lambda r: (r, None))
    pairs = []
    for record in sorted(set(listing.pairs) - bad):
        image, label = listing.pairs[record]
        try:
            with Image.open(image) as opened:
                size = opened.size
        except (OSError, ValueError):  # OpenCV decodes it, PIL does not know the format
            size = tuple(reversed(cv2.imread(str(image), cv2.IMREAD_UNCHANGED).shape[:2]))
        problem = label_problem(label, size, table)
        if problem:
            issues.add(role, label, record, problem)
            continue
        pairs.append((image, label))
    if not pairs:
        raise DataError(
            f"{root}: no usable image/label pair after skipping {issues.count - before} bad one(s) "
            "(expected at least one readable image with its label PNG)"
        )
    return pairs
