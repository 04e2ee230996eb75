"""A plain folder of segmentation data with its own class table::

    root/classes.yaml                    (schema: hrnet.data.class_table, README "classes.yaml")
    root/images/<split>/<name>.<ext>     (JPEG or PNG)
    root/labels/<split>/<name>.png       (8-bit label values of classes.yaml)

An image without its label, or a label without its image, is a bad record.
"""

from __future__ import annotations

from pathlib import Path

from hrnet.data.formats.seg_pairs import SplitListing
from hrnet.data.layouts import DataLayout
from hrnet.errors import DataError, MissingFileError

LAYOUT = DataLayout("folder", "classes.yaml, images/<split>/<name>.<ext> and labels/<split>/<name>.png")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def list_split(root: Path, split: str) -> SplitListing:
    image_dir, label_dir = root / "images" / split, root / "labels" / split
    for folder in (image_dir, label_dir):
        if not folder.is_dir():
            raise MissingFileError(f"{folder}: split folder not found")
    images = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS}
    labels = {p.stem: p for p in sorted(label_dir.glob("*.png"))}
    if not images:
        raise DataError(f"{image_dir}: no image files (expected <name>.jpg or <name>.png)")
    listing = SplitListing()
    for name, image in images.items():
        if name in labels:
            listing.pairs[name] = (image, labels[name])
        else:
            listing.missing.append(
                (name, label_dir / f"{name}.png", f"label file not found (expected it for {image.name})")
            )
    for name in sorted(set(labels) - set(images)):
        listing.missing.append(
            (name, labels[name], f"label without an image (expected images/{split}/{name}.jpg or .png)")
        )
    return listing
