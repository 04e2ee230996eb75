"""The synthetic street scenes of :mod:`hrnet.data.synthetic.cityscapes` written in any
segmentation layout (``data.synthetic.layout``): the same scenes (same seeds), their
Cityscapes label ids translated, by class name, into the layout's class table.

- ``cityscapes``: :func:`~hrnet.data.synthetic.cityscapes.generate_cityscapes`, unchanged;
- ``pascal_context``: street classes to their PASCAL-Context namesakes, the rest background (0);
- ``lip``: vehicles, people and two-wheelers become LIP's left or right legs, arms and shoes by the
  image half they lie in, so a mirrored image swaps them, as LIP's left and right limbs do;
- ``folder``: seven coarse groups stored as values 10..70 (void 255), with the dataset's own
  ``classes.yaml``.

Images are JPEG where the real layout has JPEGs (PASCAL-Context, LIP), PNG in ``folder``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import yaml
from cityscapesscripts.helpers.labels import name2label

from hrnet.data.class_table import builtin_table, parse_classes
from hrnet.data.synthetic.cityscapes import SPLIT_KEYS, generate_cityscapes, render_scene
from hrnet.data.synthetic.writer import encode, write_png
from hrnet.errors import InputError
from hrnet.io import atomic_path, atomic_write_text

SEGMENTATION_LAYOUTS = ("cityscapes", "pascal_context", "lip", "folder")

# Cityscapes class name -> the layout's class name (unnamed classes: the layout's background/void)
_PASCAL_CONTEXT = {
    "road": "road", "sidewalk": "sidewalk", "building": "building", "wall": "wall", "fence": "fence",
    "traffic light": "light", "traffic sign": "sign", "vegetation": "tree", "terrain": "grass",
    "sky": "sky", "person": "person", "rider": "person", "car": "car", "truck": "truck", "bus": "bus",
    "train": "train", "motorcycle": "motorbike", "bicycle": "bicycle",
}  # fmt: skip
_LIP = {"road": "upper_clothes", "sidewalk": "pants", "building": "coat", "vegetation": "hair", "sky": "hat"}
_LIP_SIDED = {  # (left class, right class): by the image half the pixel lies in
    "car": ("left_leg", "right_leg"), "truck": ("left_leg", "right_leg"), "bus": ("left_leg", "right_leg"),
    "person": ("left_arm", "right_arm"), "rider": ("left_arm", "right_arm"),
    "bicycle": ("left_shoe", "right_shoe"), "motorcycle": ("left_shoe", "right_shoe"),
}  # fmt: skip
_FOLDER_GROUPS = {
    "flat": (10, ["road", "sidewalk"], [128, 64, 128]),
    "construction": (20, ["building", "wall", "fence"], [70, 70, 70]),
    "object": (30, ["pole", "traffic light", "traffic sign"], [220, 220, 0]),
    "nature": (40, ["vegetation", "terrain"], [107, 142, 35]),
    "sky": (50, ["sky"], [70, 130, 180]),
    "human": (60, ["person", "rider"], [220, 20, 60]),
    "vehicle": (70, ["car", "truck", "bus", "train", "motorcycle", "bicycle"], [0, 0, 142]),
}
FOLDER_CLASSES = {
    "ignore": 255,
    "classes": [
        {"name": name, "value": value, "color": color} for name, (value, _, color) in _FOLDER_GROUPS.items()
    ],
}


def _lut(mapping: dict[str, int], fill: int) -> np.ndarray:
    lut = np.full(256, fill, np.uint8)
    for name, value in mapping.items():
        lut[name2label[name].id] = value
    return lut


def _translator(layout: str) -> Callable[[np.ndarray], np.ndarray]:
    """Cityscapes label ids -> the layout's label values."""
    if layout == "pascal_context":
        table = builtin_table("pascal_context")
        lut = _lut({cs: table.values[table.names.index(pc)] for cs, pc in _PASCAL_CONTEXT.items()}, 0)
        return lambda label: lut[label]
    if layout == "lip":
        table = builtin_table("lip")
        value = {name: table.values[i] for i, name in enumerate(table.names)}
        plain = _lut({cs: value[lip] for cs, lip in _LIP.items()}, value["background"])
        left = _lut({cs: value[pair[0]] for cs, pair in _LIP_SIDED.items()}, 0)
        right = _lut({cs: value[pair[1]] for cs, pair in _LIP_SIDED.items()}, 0)

        def lip(label: np.ndarray) -> np.ndarray:
            out = plain[label]
            half = label.shape[1] // 2  # an odd width's middle column counts as right
            for side, cols in ((left, slice(0, half)), (right, slice(half, None))):
                sided = side[label[:, cols]]
                out[:, cols] = np.where(sided > 0, sided, out[:, cols])
            return out

        return lip
    lut = _lut({cs: value for value, names, _ in _FOLDER_GROUPS.values() for cs in names}, 255)
    return lambda label: lut[label]


def _paths(layout: str, root: Path, split: str, stem: str) -> tuple[Path, Path]:
    if layout == "pascal_context":
        return root / "JPEGImages" / f"{stem}.jpg", root / "SegmentationClassContext" / f"{stem}.png"
    if layout == "lip":
        return (
            root / "TrainVal_images" / f"{split}_images" / f"{stem}.jpg",
            root / "TrainVal_parsing_annotations" / f"{split}_segmentations" / f"{stem}.png",
        )
    return root / "images" / split / f"{stem}.png", root / "labels" / split / f"{stem}.png"


def _write_list(layout: str, root: Path, split: str, stems: list[str]) -> None:
    text = "".join(f"{stem}\n" for stem in stems)
    if layout == "pascal_context":
        atomic_write_text(root / "ImageSets" / "SegmentationContext" / f"{split}.txt", text)
    elif layout == "lip":
        atomic_write_text(root / "TrainVal_images" / f"{split}_id.txt", text)


def generate_segmentation(
    root: str | Path,
    num_train_images: int,
    num_val_images: int,
    image_size: tuple[int, int] = (512, 256),
    seed: int = 0,
    layout: str = "cityscapes",
) -> dict:
    """The synthetic scenes under ``root`` in ``layout``; returns a summary as
    :func:`~hrnet.data.synthetic.cityscapes.generate_cityscapes` does (label-value fractions)."""
    if layout == "cityscapes":
        return generate_cityscapes(root, num_train_images, num_val_images, image_size, seed)
    if layout not in SEGMENTATION_LAYOUTS:
        raise InputError(f"layout: expected one of {', '.join(SEGMENTATION_LAYOUTS)}, got {layout!r}")
    if num_train_images < 0 or num_val_images < 0 or min(image_size) < 16:
        raise InputError(f"expected image counts >= 0 and a size of at least 16x16, got {image_size}")
    root, size = Path(root), (int(image_size[0]), int(image_size[1]))
    translate = _translator(layout)
    summary: dict = {"root": str(root), "seed": seed, "image_size": list(size), "layout": layout}
    if layout == "folder":
        parse_classes(FOLDER_CLASSES, "FOLDER_CLASSES")  # the file written is a valid table
        atomic_write_text(root / "classes.yaml", yaml.safe_dump(FOLDER_CLASSES, sort_keys=False))
    for split, count in (("train", num_train_images), ("val", num_val_images)):
        counts, stems = np.zeros(256, np.int64), []
        for index in range(count):
            image, label_ids = render_scene(np.random.default_rng([seed, SPLIT_KEYS[split], index]), size)
            label, stem = translate(label_ids), f"{split}_{index:06d}"
            image_path, label_path = _paths(layout, root, split, stem)
            if image_path.suffix == ".jpg":
                data = encode(image_path, image, [cv2.IMWRITE_JPEG_QUALITY, 95])
                with atomic_path(image_path) as tmp:
                    tmp.write_bytes(data)
            else:
                write_png(image_path, image)
            write_png(label_path, label)
            counts += np.bincount(label.ravel(), minlength=256)
            stems.append(stem)
        _write_list(layout, root, split, stems)
        total = max(int(counts.sum()), 1)
        summary[split] = {
            "images": count,
            "label_value_fractions": {
                int(i): round(float(counts[i]) / total, 4) for i in np.flatnonzero(counts)
            },
        }
    return summary
