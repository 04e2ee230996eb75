"""The eight object shapes of the synthetic COCO instances generator.

Each shape draws inside its box (x, y, w, h) on a ``SubpixelCanvas`` whose mask is the object's
silhouette; ``SHAPES`` maps the COCO category id to the drawing function, the range of the box's
height / width and the fraction of the box the silhouette fills.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from hrnet.data.coco_constants import coco_category
from hrnet.data.synthetic.canvas import SubpixelCanvas
from hrnet.data.synthetic.canvas import sample_cv_hsv as _hsv

CATEGORY_NAMES = ("person", "car", "train", "traffic light", "stop sign", "sports ball", "bottle", "hot dog")
CATEGORIES: tuple[dict, ...] = tuple(coco_category(name) for name in CATEGORY_NAMES)


def _rect(x0: float, y0: float, x1: float, y1: float) -> np.ndarray:
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]])


def _person(p: SubpixelCanvas, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
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


def _car(p: SubpixelCanvas, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
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


def _stop_sign(p: SubpixelCanvas, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    angles = np.deg2rad(22.5 + 45 * np.arange(8))
    center = np.array([x + w / 2, y + h / 2])
    ring = center + np.stack([np.cos(angles), np.sin(angles)], 1) * np.array([w, h]) / 2 / np.cos(np.pi / 8)
    white = (245, 245, 245)
    p.poly(ring, white)
    p.poly(center + (ring - center) * 0.86, _hsv(rng, (176, 184), (200, 255), (170, 235)))
    p.poly(_rect(x + w * 0.22, y + h * 0.42, x + w * 0.78, y + h * 0.58), white)


def _train(p: SubpixelCanvas, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
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


def _traffic_light(
    p: SubpixelCanvas, rng: np.random.Generator, x: float, y: float, w: float, h: float
) -> None:
    housing = (30, 30, 30) if rng.random() < 0.7 else _hsv(rng, (20, 30), (150, 230), (120, 200))
    p.poly(_rect(x, y, x + w, y + h), housing)
    lit = int(rng.integers(3))
    lamps = ((0, 5), (18, 30), (55, 80))  # red, amber, green hues, top to bottom
    r = min(w * 0.36, h * 0.13)
    for k, hue in enumerate(lamps):
        value = (220, 255) if k == lit else (40, 80)
        p.disc(np.array([x + w / 2, y + h * (0.2 + 0.3 * k)]), r, _hsv(rng, hue, (180, 255), value))


def _hot_dog(p: SubpixelCanvas, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
    bun = _hsv(rng, (10, 22), (90, 170), (170, 240))
    sausage = _hsv(rng, (0, 10), (150, 230), (100, 170))
    p.line(np.array([x + h * 0.35, y + h * 0.6]), np.array([x + w - h * 0.35, y + h * 0.6]), h * 0.7, bun)
    p.line(np.array([x + h * 0.2, y + h * 0.35]), np.array([x + w - h * 0.2, y + h * 0.35]), h * 0.4, sausage)
    zig = np.linspace(x + w * 0.2, x + w * 0.8, 7)
    pts = np.stack([zig, y + h * (0.28 + 0.14 * (np.arange(7) % 2))], 1)
    mustard = _hsv(rng, (25, 32), (200, 255), (200, 255))
    for a, b in zip(pts[:-1], pts[1:], strict=True):
        p.line(a, b, max(1.0, h * 0.08), mustard)


def _ball(p: SubpixelCanvas, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
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


def _bottle(p: SubpixelCanvas, rng: np.random.Generator, x: float, y: float, w: float, h: float) -> None:
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
