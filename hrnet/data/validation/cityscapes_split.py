"""Checks a Cityscapes split before prepare indexes it: every pair's headers and label ids
(:func:`list_cityscapes_pairs`), then that every image decodes (:func:`check_images`)."""

from __future__ import annotations

from pathlib import Path

from hrnet.data.formats.cityscapes import frame_name, list_cityscapes_pairs
from hrnet.data.issues import IssueLog
from hrnet.data.validation.image_files import check_images
from hrnet.errors import DataError


def _frame_record(frame: str) -> tuple[str, int | None]:
    return frame, None


def check_cityscapes_split(
    root: Path, split: str, *, role: str, issues: IssueLog, progress: bool = True
) -> list[tuple[Path, Path]]:
    """The usable ``(image, labelIds)`` pairs of ``split``; bad ones go to ``issues`` under ``role``."""
    issues.start(role)
    before = issues.count
    pairs = list_cityscapes_pairs(root, split, check_label_values=True, issues=issues, report_split=role)
    image_dir = Path(root) / "leftImg8bit" / split
    files = {frame_name(image): str(image.relative_to(image_dir)) for image, _ in pairs}
    bad = check_images(files, image_dir, {}, role, issues, progress=progress, record=_frame_record)
    pairs = [(image, label) for image, label in pairs if frame_name(image) not in bad]
    if not pairs:
        skipped = issues.count - before
        raise DataError(
            f"{image_dir}: no usable image/label pair after skipping {skipped} bad one(s) "
            "(expected at least one readable image with its labelIds PNG)"
        )
    return pairs
