"""Where a COCO split should be, and a hint naming what sits nearby when it is not there."""

from __future__ import annotations

from pathlib import Path

from hrnet.data.formats.coco import ANNOTATION_PREFIX, coco_layout
from hrnet.data.formats.coco_records import CocoKind
from hrnet.errors import MissingFileError


def _layout_text(source: str, split: str, prefix: str) -> str:
    ann_file, image_dir = coco_layout(source, Path("."), split, must_exist=False, annotations=prefix)
    return f"{ann_file.as_posix()} and {image_dir.as_posix()}/ under the {source} root"


def _nearby(root: Path, pattern: str, *, dirs: bool) -> list[str]:
    """Paths (relative to ``root``, at most two levels deep) matching ``pattern``."""
    found: list[str] = []
    for candidate in (*root.glob(pattern), *root.glob(f"*/{pattern}"), *root.glob(f"*/*/{pattern}")):
        if candidate.is_dir() == dirs:
            found.append(candidate.relative_to(root).as_posix() + ("/" if dirs else ""))
    return sorted(found)[:3]


def locate_split(source: str, root: Path, split: str, kind: CocoKind = "keypoints") -> tuple[Path, Path]:
    """(annotation file, image folder) of ``split``; raises ``FileNotFoundError`` naming what is off."""
    root = Path(root)
    prefix = ANNOTATION_PREFIX[kind]
    layout = _layout_text(source, split, prefix)
    if not root.exists():
        raise MissingFileError(f"{root}: data.root does not exist (expected a folder holding {layout})")
    if not root.is_dir():
        raise MissingFileError(f"{root}: data.root is not a folder (expected a folder holding {layout})")
    ann_file, image_dir = coco_layout(source, root, split, must_exist=False, annotations=prefix)
    if not ann_file.is_file():
        found = _nearby(root, f"{prefix}_*.json", dirs=False)
        hint = f"; found {', '.join(found)}" if found else ""
        if not (root / "annotations").is_dir():
            hint = f"; there is no annotations/ folder{hint}"
        raise MissingFileError(
            f"{ann_file}: annotation file of split {split!r} not found (expected {layout}{hint})"
        )
    if not image_dir.is_dir():
        found = [f for f in _nearby(root, image_dir.name, dirs=True) if f != f"{image_dir.name}/"]
        hint = f"; found {', '.join(found)}" if found else ""
        raise MissingFileError(
            f"{image_dir}: image folder of split {split!r} not found (expected {layout}{hint})"
        )
    return ann_file, image_dir
