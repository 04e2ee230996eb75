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

``python -m hrnet.data.synthetic_detection --root DIR --num-train N --num-val M --seed S``
"""

from __future__ import annotations

import argparse
import functools
import json
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from hrnet.data.coco_constants import coco_category
from hrnet.errors import InputError
from hrnet.io import atomic_directory, atomic_write_json

CATEGORY_NAMES = ("person", "car", "train", "traffic light", "stop sign", "sports ball", "bottle", "hot dog")
CATEGORIES: tuple[dict, ...] = tuple(coco_category(name) for name in CATEGORY_NAMES)
SPLITS = {"train": 0, "val": 1}
VAL_ID_OFFSET = 1_000_000
SHIFT = 4  # cv2 sub-pixel drawing: coordinates carry 4 fractional bits
MAX_COVERED = 0.4  # a new object may hide at most this fraction of an earlier one
# (probability, min, max) of an object's silhouette area in px: COCO's small / medium / large ranges.
AREA_BANDS = ((0.4, 150.0, 32.0**2), (0.4, 32.0**2, 96.0**2), (0.2, 96.0**2, 125.0**2))
Color = tuple[int, int, int]


class _Painter:
    """Draws primitives on the BGR image (anti-aliased) and the object's silhouette mask."""

    def __init__(self, image: np.ndarray, mask: np.ndarray) -> None:
        self.image, self.mask = image, mask

    @staticmethod
    def _pts(points: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(points, dtype=np.float64) * (1 << SHIFT)).astype(np.int32)

    def poly(self, points: np.ndarray, color: Color) -> None:
        pts = [self._pts(points)]
        cv2.fillPoly(self.image, pts, color, cv2.LINE_AA, SHIFT)
        cv2.fillPoly(self.mask, pts, 255, cv2.LINE_8, SHIFT)

    def disc(self, center: np.ndarray, radius: float, color: Color) -> None:
        c, r = tuple(self._pts(center)), max(1 << (SHIFT - 1), int(round(radius * (1 << SHIFT))))
        cv2.circle(self.image, c, r, color, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(self.mask, c, r, 255, -1, cv2.LINE_8, SHIFT)

    def line(self, a: np.ndarray, b: np.ndarray, thick: float, color: Color) -> None:
        t = max(1, int(round(thick)))
        pa, pb = tuple(self._pts(a)), tuple(self._pts(b))
        cv2.line(self.image, pa, pb, color, t, cv2.LINE_AA, SHIFT)
        cv2.line(self.mask, pa, pb, 255, t, cv2.LINE_8, SHIFT)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _hsv(
    rng: np.random.Generator, h: tuple[float, float], s: tuple[float, float], v: tuple[float, float]
) -> Color:
    pixel = np.uint8([[[rng.uniform(*h) % 180, rng.uniform(*s), rng.uniform(*v)]]])
    b, g, r = cv2.cvtColor(pixel, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


# Each shape draws inside its box (x, y, w, h); ``ASPECT`` gives the box's h / w range.
def _person(p: _Painter, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    skin = _hsv(rng, (5, 20), (60, 150), (120, 240))
    shirt = _hsv(rng, (0, 180), (150, 255), (120, 255))
    pants = _hsv(rng, (100, 130), (60, 200), (30, 110))
    cx, head_r = x + w / 2, min(w * 0.22, h * 0.1)
    limb = max(1.5, w * 0.16)
    hip_y, shoulder_y = y + h * 0.58, y + 2 * head_r + h * 0.04
    for side in (-1, 1):
        foot = np.array([cx + side * (w / 2 - limb / 2), y + h - limb / 2])
        p.line(np.array([cx + side * w * 0.1, hip_y]), foot, limb, pants)
        hand = np.array([cx + side * (w / 2 - limb / 2), y + h * rng.uniform(0.3, 0.55)])
        p.line(np.array([cx + side * w * 0.22, shoulder_y + limb / 2]), hand, limb * 0.8, shirt)
    p.poly(_rect(cx - w * 0.25, shoulder_y, cx + w * 0.25, hip_y + limb * 0.5), shirt)
    p.disc(np.array([cx, y + head_r]), head_r, skin)


def _car(p: _Painter, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    body = _hsv(rng, (0, 180), (170, 255), (130, 255))
    glass = _hsv(rng, (95, 105), (40, 110), (200, 250))
    wheel_r = h * 0.22
    top, bottom = y + h * 0.42, y + h - wheel_r * 0.9

    def cabin(inset: float) -> np.ndarray:
        xs = np.array([0.22 + inset, 0.32 + inset, 0.7 - inset, 0.82 - inset])
        ys = np.array([top - inset * h, y + inset * h * 1.5, y + inset * h * 1.5, top - inset * h])
        return np.stack([x + w * xs, ys], 1)

    p.poly(cabin(0.0), body)
    p.poly(cabin(0.05), glass)
    p.poly(_rect(x, top, x + w, bottom), body)
    for fx in (0.22, 0.78):
        hub = np.array([x + w * fx, y + h - wheel_r])
        p.disc(hub, wheel_r, (25, 25, 25))
        p.disc(hub, wheel_r * 0.45, (170, 170, 170))


def _stop_sign(p: _Painter, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    angles = np.deg2rad(22.5 + 45 * np.arange(8))
    center = np.array([x + w / 2, y + h / 2])
    ring = center + np.stack([np.cos(angles), np.sin(angles)], 1) * np.array([w, h]) / 2 / np.cos(np.pi / 8)
    white = (245, 245, 245)
    p.poly(ring, white)
    p.poly(center + (ring - center) * 0.86, _hsv(rng, (176, 184), (200, 255), (170, 235)))
    p.poly(_rect(x + w * 0.22, y + h * 0.42, x + w * 0.78, y + h * 0.58), white)


def _train(p: _Painter, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    body = _hsv(rng, (0, 180), (0, 200), (150, 245))
    nose = w * rng.uniform(0.12, 0.2)
    front, back = (x + w, x) if rng.random() < 0.5 else (x, x + w)
    d = 1.0 if front > back else -1.0
    roof, floor = y + h * 0.05, y + h * 0.82
    p.poly(np.array([[back, roof], [front - d * nose, roof], [front, y + h * 0.45], [front, floor],
                     [back, floor]]), body)  # fmt: skip
    p.poly(_rect(x, y + h * 0.6, x + w, y + h * 0.7), _hsv(rng, (0, 180), (150, 255), (80, 200)))  # livery
    glass = _hsv(rng, (95, 115), (30, 120), (25, 80))
    count = int(rng.integers(4, 9))
    step = (w - nose) / count
    start = min(back, front - d * nose)
    for k in range(count):
        wx = start + k * step + step * 0.2
        p.poly(_rect(wx, y + h * 0.2, wx + step * 0.6, y + h * 0.45), glass)
    for fx in (0.15, 0.85):  # bogies
        p.poly(_rect(x + w * (fx - 0.08), floor, x + w * (fx + 0.08), y + h), (30, 30, 30))


def _traffic_light(p: _Painter, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    housing = (30, 30, 30) if rng.random() < 0.7 else _hsv(rng, (20, 30), (150, 230), (120, 200))
    p.poly(_rect(x, y, x + w, y + h), housing)
    lit = int(rng.integers(3))
    lamps = ((0, 5), (18, 30), (55, 80))  # red, amber, green hues, top to bottom
    r = min(w * 0.36, h * 0.13)
    for k, hue in enumerate(lamps):
        value = (220, 255) if k == lit else (40, 80)
        p.disc(np.array([x + w / 2, y + h * (0.2 + 0.3 * k)]), r, _hsv(rng, hue, (180, 255), value))


def _hot_dog(p: _Painter, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    bun = _hsv(rng, (10, 22), (90, 170), (170, 240))
    sausage = _hsv(rng, (0, 10), (150, 230), (100, 170))
    p.line(np.array([x + h * 0.35, y + h * 0.6]), np.array([x + w - h * 0.35, y + h * 0.6]), h * 0.7, bun)
    p.line(np.array([x + h * 0.2, y + h * 0.35]), np.array([x + w - h * 0.2, y + h * 0.35]), h * 0.4, sausage)
    zig = np.linspace(x + w * 0.2, x + w * 0.8, 7)
    pts = np.stack([zig, y + h * (0.28 + 0.14 * (np.arange(7) % 2))], 1)
    mustard = _hsv(rng, (25, 32), (200, 255), (200, 255))
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        p.line(a, b, max(1.0, h * 0.08), mustard)


def _ball(p: _Painter, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    center, r = np.array([x + w / 2, y + h / 2]), min(w, h) / 2
    kind = int(rng.integers(3))
    if kind == 0:  # soccer: white with dark patches
        p.disc(center, r, (235, 235, 235))
        start = rng.uniform(0, 2 * np.pi)
        for a in start + 2 * np.pi / 5 * np.arange(5):
            p.disc(center + 0.62 * r * np.array([np.cos(a), np.sin(a)]), r * 0.2, (30, 30, 30))
        p.disc(center, r * 0.22, (30, 30, 30))
        return
    if kind == 1:  # basketball: orange, dark seams
        fill, seam = _hsv(rng, (8, 16), (200, 255), (200, 255)), (20, 20, 20)
    else:  # tennis: yellow-green, white seams
        fill, seam = _hsv(rng, (30, 40), (150, 230), (200, 255)), (240, 240, 240)
    p.disc(center, r, fill)
    t = max(1.0, r * 0.08)
    p.line(center - (r * 0.95, 0), center + (r * 0.95, 0), t, seam)
    p.line(center - (0, r * 0.95), center + (0, r * 0.95), t, seam)


def _bottle(p: _Painter, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    if rng.random() < 0.6:
        glass = _hsv(rng, (35, 75), (150, 255), (60, 170))  # green
    else:
        glass = _hsv(rng, (10, 20), (180, 255), (60, 140))  # brown
    cx = x + w / 2
    shoulder = [
        [x, y + h * 0.4],
        [cx - w * 0.18, y + h * 0.2],
        [cx + w * 0.18, y + h * 0.2],
        [x + w, y + h * 0.4],
    ]
    p.poly(_rect(x, y + h * 0.38, x + w, y + h), glass)
    p.poly(np.array(shoulder), glass)
    p.poly(_rect(cx - w * 0.18, y + h * 0.06, cx + w * 0.18, y + h * 0.22), glass)
    p.poly(_rect(cx - w * 0.22, y, cx + w * 0.22, y + h * 0.07), _hsv(rng, (0, 180), (150, 255), (150, 255)))
    p.poly(_rect(x + w * 0.12, y + h * 0.55, x + w * 0.9, y + h * 0.75), (235, 235, 235))
    shine = max(1.0, w * 0.08)
    p.line(
        np.array([x + w * 0.25, y + h * 0.42]), np.array([x + w * 0.25, y + h * 0.95]), shine, (220, 230, 230)
    )


# category id -> (drawing function, range of box height / width, silhouette fraction of the box)
SHAPES: dict[int, tuple[Callable[..., None], tuple[float, float], float]] = {
    1: (_person, (1.8, 2.6), 0.48),
    3: (_car, (0.45, 0.65), 0.68),
    7: (_train, (0.28, 0.4), 0.9),
    10: (_traffic_light, (2.2, 3.0), 1.0),
    13: (_stop_sign, (1.0, 1.0), 0.85),
    37: (_ball, (1.0, 1.0), 0.8),
    44: (_bottle, (2.4, 3.2), 0.85),
    58: (_hot_dog, (0.3, 0.45), 0.85),
}
assert sorted(SHAPES) == sorted(c["id"] for c in CATEGORIES)


@functools.lru_cache(maxsize=4)
def _noise_bank(w: int, h: int) -> np.ndarray:
    """Fixed pixel-noise textures that images crop at random offsets (fast and seeded)."""
    unit = np.random.default_rng(75_312_024).standard_normal((h + 32, w + 32))
    return np.stack([np.round(unit * s) for s in (3, 6, 9)]).astype(np.int16)


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
            SHAPES[category][0](_Painter(layer, mask), rng, x, y, bw, bh)
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
    noise = _noise_bank(w, h)[int(rng.integers(3))]
    y0, x0 = int(rng.integers(0, 33)), int(rng.integers(0, 33))
    image = cv2.add(image, cv2.merge([noise[y0 : y0 + h, x0 : x0 + w]] * 3), dtype=cv2.CV_8U)
    if rng.random() < 0.2:
        image = cv2.GaussianBlur(image, (3, 3), 0)
    return image, anns


def _generate_split(
    root: Path,
    split: str,
    count: int,
    size: tuple[int, int],
    objects: tuple[int, int],
    seed: int,
    quality: int,
) -> dict:
    offset = 0 if split == "train" else VAL_ID_OFFSET
    images, annotations = [], []
    with atomic_directory(root / "images" / split) as image_dir:
        for index in range(count):
            image, anns = render_image(np.random.default_rng([seed, SPLITS[split], index]), size, objects)
            image_id = offset + index + 1
            file_name = f"{image_id:012d}.jpg"
            ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
            if not ok:
                raise RuntimeError(f"could not encode {root / 'images' / split / file_name}")
            (image_dir / file_name).write_bytes(buf.tobytes())
            images.append(
                {"id": image_id, "file_name": file_name, "width": size[0], "height": size[1], "license": 1}
            )
            for j, ann in enumerate(anns):
                annotations.append({"id": image_id * 100 + j + 1, "image_id": image_id, **ann})
    payload = {
        "info": {"description": "HRNet synthetic COCO-format detection", "version": "1.0", "year": 2024,
                 "contributor": "hrnet.data.synthetic_detection", "seed": seed},
        "licenses": [{"id": 1, "name": "CC0 1.0", "url": "https://creativecommons.org/publicdomain/zero/1.0/"}],
        "images": images,
        "annotations": annotations,
        "categories": [dict(c) for c in CATEGORIES],
    }  # fmt: skip
    atomic_write_json(root / "annotations" / f"instances_{split}.json", payload, indent=None)
    per_class = {c["name"]: sum(a["category_id"] == c["id"] for a in annotations) for c in CATEGORIES}
    areas = np.asarray([a["area"] for a in annotations])
    return {
        "images": len(images),
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
    summary: dict = {"root": str(root), "seed": seed, "image_size": list(size)}
    for split, count in (("train", num_train_images), ("val", num_val_images)):
        summary[split] = _generate_split(root, split, count, size, objects, seed, jpeg_quality)
    return summary


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--num-train", type=int, default=2000)
    parser.add_argument("--num-val", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=128)
    parser.add_argument("--min-objects", type=int, default=1)
    parser.add_argument("--max-objects", type=int, default=5)
    args = parser.parse_args(argv)
    summary = generate_coco_detection(
        args.root, args.num_train, args.num_val, (args.width, args.height),
        (args.min_objects, args.max_objects), args.seed,
    )  # fmt: skip
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
