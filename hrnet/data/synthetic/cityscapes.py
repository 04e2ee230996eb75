"""Embedded default segmentation data: synthetic street scenes in the Cityscapes file layout.

Each scene is a pinhole street view: sky gradient with clouds, a skyline of building blocks and
perspective side facades with window grids, a road (lane marks) between sidewalks (tiles, curb)
with terrain or facades beyond, walls and fences along them, trees, poles carrying traffic signs
or lights, cars, trucks, buses, trams, motorcycles and bicycles (ridden or parked) and people on
the sidewalks, sized by their distance; an ego-vehicle hood and a black border use ids that map
to ignore. Class colours are drawn per image from class-specific ranges and every class has its
own texture, so colour alone does not separate the classes. Labels carry real Cityscapes label
ids, every one of the 19 evaluated classes (road 7, sidewalk 8, building 11, wall 12, fence 13,
pole 17, traffic light 19, traffic sign 20, vegetation 21, terrain 22, sky 23, person 24, rider
25, car 26, truck 27, bus 28, train 31, motorcycle 32, bicycle 33) plus void (ego vehicle 1,
unlabeled 0). Output is byte-identical for a given seed (one ``numpy`` Generator per image).

``python -m hrnet.data.synthetic.cityscapes --root DIR --num-train N --num-val M --seed S``
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from hrnet.data.cityscapes import IMAGE_SUFFIX, LABEL_SUFFIX
from hrnet.data.synthetic import cli
from hrnet.data.synthetic.canvas import FlatCanvas, maybe_blur, texture_banks
from hrnet.data.synthetic.cityscapes_objects import place_objects
from hrnet.data.synthetic.cityscapes_street import (
    SIDEWALK,
    TEXTURE,
    Scene,
    barrier,
    ego_and_border,
    facade,
    ground,
    sky,
    skyline,
)
from hrnet.data.synthetic.writer import write_png
from hrnet.errors import InputError

CITIES = {"train": ("synthville", "pixelburg"), "val": ("renderstadt",)}
SPLIT_KEYS = {"train": 0, "val": 1}


def _texture(cv: FlatCanvas, rng: np.random.Generator) -> np.ndarray:
    h, w = cv.label.shape
    fine_bank, blotch_bank = texture_banks(w, h)
    amp_fine, amp_blotch = np.zeros(256, np.float32), np.zeros(256, np.float32)
    for lid, (a, b) in TEXTURE.items():
        amp_fine[lid], amp_blotch[lid] = a, b
    oy, ox = int(rng.integers(0, 64)), int(rng.integers(0, 64))
    fine, blotch = (
        fine_bank[oy : oy + h, ox : ox + w],
        blotch_bank[64 - oy : 64 - oy + h, 64 - ox : 64 - ox + w],
    )
    gain = 1.0 + amp_fine[cv.label] * fine + amp_blotch[cv.label] * blotch
    gain *= rng.uniform(0.75, 1.2)  # exposure
    out = cv.image.astype(np.float32) * gain[..., None] + rng.normal(0, 3.0)
    out += fine[::-1, ::-1, None] * rng.uniform(1.0, 5.0)  # sensor noise
    return maybe_blur(np.clip(out, 0, 255).astype(np.uint8), rng, 0.3)


def render_scene(
    rng: np.random.Generator, size: tuple[int, int] = (512, 256)
) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic street scene: ``(image BGR uint8 (H, W, 3), label ids uint8 (H, W))``."""
    w, h = size
    cv, sc = FlatCanvas(w, h), Scene(rng, w, h)
    sky(cv, sc)
    skyline(cv, sc)
    beyond = ground(cv, sc)
    for side in (-1, 1):
        if beyond[side] == SIDEWALK and rng.random() < 0.8:
            facade(cv, sc, side)
        if rng.random() < 0.45:
            barrier(cv, sc, side)
    place_objects(cv, sc, beyond)
    ego_and_border(cv, sc)
    return _texture(cv, rng), cv.label


def generate_cityscapes(
    root: str | Path,
    num_train_images: int,
    num_val_images: int,
    image_size: tuple[int, int] = (512, 256),
    seed: int = 0,
) -> dict:
    """Write ``num_train_images``/``num_val_images`` scenes under ``root`` in the Cityscapes layout.

    ``image_size`` is (width, height). Returns a summary (counts, cities, label-id pixel counts).
    """
    if num_train_images < 0 or num_val_images < 0:
        raise InputError(f"image counts must be >= 0, got {num_train_images}, {num_val_images}")
    if min(image_size) < 16:
        raise InputError(f"image_size must be at least 16x16, got {image_size}")
    root, size = Path(root), (int(image_size[0]), int(image_size[1]))
    summary: dict = {"root": str(root), "seed": seed, "image_size": list(size)}
    for split, count in (("train", num_train_images), ("val", num_val_images)):
        counts = np.zeros(256, np.int64)
        cities = CITIES[split]
        for index in range(count):
            rng = np.random.default_rng([seed, SPLIT_KEYS[split], index])
            image, label = render_scene(rng, size)
            city = cities[index % len(cities)]
            stem = f"{city}_{index // len(cities):06d}_{19:06d}"
            write_png(root / "leftImg8bit" / split / city / f"{stem}{IMAGE_SUFFIX}", image)
            write_png(root / "gtFine" / split / city / f"{stem}{LABEL_SUFFIX}", label)
            counts += np.bincount(label.ravel(), minlength=256)
        summary[split] = {
            "images": count,
            "cities": list(cities),
            "label_id_fractions": {
                int(i): round(float(counts[i]) / max(int(counts.sum()), 1), 4) for i in np.flatnonzero(counts)
            },
        }
    return summary


def main(argv: list[str] | None = None) -> None:
    args = cli.parser(__doc__, num_train=300, num_val=60, size=(512, 256)).parse_args(argv)
    summary = generate_cityscapes(
        args.root, args.num_train, args.num_val, (args.width, args.height), args.seed
    )
    cli.print_summary(summary)


if __name__ == "__main__":
    main()
