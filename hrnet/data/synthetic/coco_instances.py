"""Embedded detection dataset: synthetic objects written in the COCO instances (boxes) format.

Eight real COCO categories (with COCO's ids and names, among them ``train`` and names holding a
space, as real data has), each a simple shape with a characteristic colour family: person
(head, shirt, arms, legs), car (body, cabin with windows, two wheels), train (long carriage
with a window band, sloped nose and bogies), traffic light (dark housing, three lamps, one lit),
stop sign (red octagon, white rim and bar), sports ball (disc with soccer/basket/tennis
markings), bottle (tall body, neck, cap, highlight) and hot dog (bun, sausage, mustard). Objects
range from small to large (COCO area ranges), may overlap (each keeps most of itself visible)
and lie on textured backgrounds among unannotated clutter shapes.
``bbox`` is tight around the visible pixels, ``area`` is their count and ``segmentation`` their
outer contour(s). Output is byte-identical for a given seed (one ``numpy`` Generator per image).

``python -m hrnet.data.synthetic.coco_instances --root DIR --num-train N --num-val M --seed S``
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

from hrnet.data.synthetic import cli
from hrnet.data.synthetic.canvas import SubpixelCanvas, add_noise, maybe_blur, noise_bank
from hrnet.data.synthetic.coco_shapes import CATEGORIES, SHAPES
from hrnet.data.synthetic.writer import CocoSplit, write_coco_dataset
from hrnet.errors import InputError

__all__ = ["CATEGORIES", "generate_coco_detection", "render_image"]
MAX_COVERED = 0.4  # a new object may hide at most this fraction of an earlier one
# (probability, min, max) of an object's silhouette area in px: COCO's small / medium / large ranges.
AREA_BANDS = ((0.4, 150.0, 32.0**2), (0.4, 32.0**2, 96.0**2), (0.2, 96.0**2, 125.0**2))
# Pixel noise: seed of the fixed bank, its margin over the image (crop offsets 0..pad), sigmas.
NOISE_SEED, NOISE_PAD, NOISE_SIGMAS = 75_312_024, 32, (3, 6, 9)
OUTPUT = CocoSplit(
    ann_file="instances_{split}.json",
    description="HRNet synthetic COCO-format detection",
    contributor="hrnet.data.synthetic_detection",
    categories=[dict(c) for c in CATEGORIES],
    compact_json=False,
    image_fields={"license": 1},
)


def _background(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Low-frequency colour field, optional stripes or checks, and unannotated clutter shapes."""
    low = np.clip(rng.uniform(40, 220, (3, 3, 3)), 0, 255).astype(np.uint8)
    img = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
    pattern = int(rng.integers(3))
    if pattern:
        period, amp = rng.uniform(6, 24), rng.uniform(8, 25)
        yy, xx = np.mgrid[0:h, 0:w]
        if pattern == 1:  # stripes at a random angle
            angle = rng.uniform(0, np.pi)
            wave = np.sign(np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period))
        else:  # soft checks
            wave = np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period)
        img = np.clip(img + (amp * wave)[..., None], 0, 255).astype(np.uint8)
    _clutter(img, rng, int(rng.integers(1, 5)))
    return img


def _clutter(img: np.ndarray, rng: np.random.Generator, count: int) -> None:
    """Distractors: triangles, bars, rings and muted rectangles (none is an annotated class)."""
    h, w = img.shape[:2]
    for _ in range(count):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        s = rng.uniform(0.05, 0.35) * min(w, h)
        a = rng.uniform(0, 2 * np.pi)
        kind = int(rng.integers(4))
        if kind == 0:  # triangle
            corners = a + np.array([0.0, 2.1, 4.2])
            pts = np.stack([cx + s * np.cos(corners), cy + s * np.sin(corners)], 1)
            cv2.fillPoly(img, [np.round(pts).astype(np.int32)], color, cv2.LINE_AA)
        elif kind == 1:  # bar
            end = (round(cx + 1.5 * s * np.cos(a)), round(cy + 1.5 * s * np.sin(a)))
            cv2.line(img, (round(cx), round(cy)), end, color, int(rng.integers(1, 4)), cv2.LINE_AA)
        elif kind == 2:  # ring
            cv2.circle(
                img, (round(cx), round(cy)), int(s / 2) + 2, color, int(rng.integers(1, 3)), cv2.LINE_AA
            )
        else:  # muted rectangle
            muted = tuple(int(v * 0.5 + 64) for v in color)
            x0, y0 = int(cx), int(cy)
            cv2.rectangle(img, (x0, y0), (x0 + int(s), y0 + int(s * rng.uniform(0.3, 1.2))), muted, -1)


def _sample_size(rng: np.random.Generator, category: int, image_side: int) -> tuple[float, float]:
    """Box (w, h) for ``category`` whose silhouette area falls in a random ``AREA_BANDS`` band.

    The longest side is capped at 0.98 of the image, so tall/wide shapes in a small image may fall
    short of the large band.
    """
    _, (lo, hi), fill = SHAPES[category]
    ratio = rng.uniform(lo, hi)  # h / w
    band = AREA_BANDS[int(rng.choice(len(AREA_BANDS), p=[b[0] for b in AREA_BANDS]))]
    area = np.exp(rng.uniform(np.log(band[1]), np.log(band[2]))) / fill
    bw = float(np.sqrt(area / ratio))
    bh = bw * ratio
    shrink = min(1.0, 0.98 * image_side / max(bw, bh))
    return bw * shrink, bh * shrink


def _annotation(category: int, visible: np.ndarray) -> dict:
    ys, xs = np.nonzero(visible)
    x0, y0, x1, y1 = float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)
    contours, _ = cv2.findContours(visible, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = [
        [round(float(v), 1) for v in (c.reshape(-1, 2) + 0.5).reshape(-1)] for c in contours if len(c) >= 3
    ]
    return {
        "category_id": category,
        "bbox": [x0, y0, x1 - x0, y1 - y0],
        "area": float(len(xs)),
        "iscrowd": 0,
        "segmentation": polygons or [[x0, y0, x1, y0, x1, y1, x0, y1]],
    }


def render_image(
    rng: np.random.Generator, size: tuple[int, int], objects: tuple[int, int]
) -> tuple[np.ndarray, list[dict]]:
    """One BGR image (H, W, 3) and its annotations (without ``id``/``image_id``)."""
    w, h = size
    image = _background(rng, w, h)
    owner = np.full((h, w), -1, dtype=np.int16)
    drawn: list[tuple[int, int]] = []  # (category, pixel count when drawn)
    categories = sorted(SHAPES)
    plans = []
    for _ in range(int(rng.integers(objects[0], objects[1] + 1))):
        category = categories[int(rng.integers(len(categories)))]
        plans.append((category, *_sample_size(rng, category, min(w, h))))
    for category, bw, bh in sorted(plans, key=lambda p: -p[1] * p[2]):  # large first, small in front
        for _attempt in range(8):
            x, y = rng.uniform(-0.1 * bw, w - 0.9 * bw), rng.uniform(-0.1 * bh, h - 0.9 * bh)
            mask = np.zeros((h, w), dtype=np.uint8)
            layer = image.copy()
            SHAPES[category][0](SubpixelCanvas(layer, mask), rng, x, y, bw, bh)
            on = mask > 0
            if np.count_nonzero(on) < 16:
                continue
            covered = owner[on]
            hidden = np.bincount(covered[covered >= 0], minlength=len(drawn))
            left = [np.count_nonzero(owner == i) - hidden[i] for i in range(len(drawn))]
            if all(left[i] >= (1 - MAX_COVERED) * drawn[i][1] for i in range(len(drawn))):
                image = layer
                owner[on] = len(drawn)
                drawn.append((category, int(np.count_nonzero(on))))
                break
    if rng.random() < 0.3:  # a late clutter shape may hide parts of objects
        before = image.copy()
        _clutter(image, rng, 1)
        owner[np.any(image != before, axis=2)] = -1
    anns = []
    for index, (category, _) in enumerate(drawn):
        visible = (owner == index).astype(np.uint8)
        if np.count_nonzero(visible) >= 16:
            anns.append(_annotation(category, visible))
    texture = noise_bank(w, h, NOISE_SEED, NOISE_PAD, NOISE_SIGMAS)[int(rng.integers(len(NOISE_SIGMAS)))]
    y0, x0 = int(rng.integers(0, NOISE_PAD + 1)), int(rng.integers(0, NOISE_PAD + 1))
    return maybe_blur(add_noise(image, texture, y0, x0), rng, 0.2), anns


def _split_summary(count: int, annotations: list[dict]) -> dict:
    per_class = {c["name"]: sum(a["category_id"] == c["id"] for a in annotations) for c in CATEGORIES}
    areas = np.asarray([a["area"] for a in annotations])
    return {
        "images": count,
        "annotations": len(annotations),
        "per_class": per_class,
        "small_medium_large": [int((areas < 32**2).sum()), int(((areas >= 32**2) & (areas < 96**2)).sum()),
                               int((areas >= 96**2).sum())],
    }  # fmt: skip


def generate_coco_detection(
    root: str | Path,
    num_train_images: int,
    num_val_images: int,
    image_size: tuple[int, int] = (128, 128),
    objects_per_image: tuple[int, int] = (1, 5),
    seed: int = 0,
    jpeg_quality: int = 92,
) -> dict:
    """Writes ``root/images/{train,val}/`` and ``root/annotations/instances_{train,val}.json``.

    ``image_size`` is (width, height); ``objects_per_image`` an inclusive (min, max) range of tries
    (an object that cannot be placed visibly enough is skipped). Returns per-split counts.
    """
    if num_train_images < 0 or num_val_images < 0:
        raise InputError("image counts must be >= 0")
    if not 0 <= objects_per_image[0] <= objects_per_image[1]:
        raise InputError(f"objects_per_image must be 0 <= min <= max, got {objects_per_image}")
    if min(image_size) < 32:
        raise InputError(f"image_size must be at least 32x32, got {image_size}")
    root = Path(root)
    size = (int(image_size[0]), int(image_size[1]))
    objects = (int(objects_per_image[0]), int(objects_per_image[1]))
    render = functools.partial(render_image, size=size, objects=objects)
    counts = {"train": num_train_images, "val": num_val_images}
    splits = write_coco_dataset(root, counts, seed, render, OUTPUT, jpeg_quality, _split_summary)
    return {"root": str(root), "seed": seed, "image_size": list(size), **splits}


def main(argv: list[str] | None = None) -> None:
    args = cli.parser(
        __doc__, num_train=2000, num_val=200, size=(128, 128), per_image=("objects", 1, 5)
    ).parse_args(argv)
    summary = generate_coco_detection(
        args.root, args.num_train, args.num_val, (args.width, args.height),
        (args.min_objects, args.max_objects), args.seed,
    )  # fmt: skip
    cli.print_summary(summary)


if __name__ == "__main__":
    main()
