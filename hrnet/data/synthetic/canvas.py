"""Drawing, colour and noise shared by the synthetic generators.

``SubpixelCanvas`` draws anti-aliased primitives with 4 fractional bits into a BGR image and,
with the same geometry but without anti-aliasing, into a label mask (COCO keypoints and
instances). ``FlatCanvas`` fills integer polygons into an image and a label-id map with identical
rasterisation (Cityscapes). Noise banks are fixed, seeded textures that images crop at random
offsets, which is much faster than drawing fresh noise per image.
"""

from __future__ import annotations

import colorsys
import functools

import cv2
import numpy as np

Color = tuple[int, int, int]
SHIFT = 4  # cv2 sub-pixel drawing: coordinates carry 4 fractional bits
ONE = 1 << SHIFT


def hsv_bgr(h: float, s: float, v: float) -> Color:
    """BGR colour from hue in degrees and saturation/value in [0, 1] (clamped)."""
    r, g, b = colorsys.hsv_to_rgb((h / 360.0) % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return int(b * 255), int(g * 255), int(r * 255)


def sample_cv_hsv(
    rng: np.random.Generator, h: tuple[float, float], s: tuple[float, float], v: tuple[float, float]
) -> Color:
    """BGR colour drawn uniformly from OpenCV HSV ranges (hue 0..180, saturation/value 0..255)."""
    pixel = np.uint8([[[rng.uniform(*h) % 180, rng.uniform(*s), rng.uniform(*v)]]])
    b, g, r = cv2.cvtColor(pixel, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def shade(color: Color, f: float) -> Color:
    """``color`` scaled by ``f``, clipped to 0..255 and truncated to int."""
    return tuple(int(min(255, max(0, c * f))) for c in color)  # type: ignore[return-value]


class SubpixelCanvas:
    """Draws each primitive on the BGR image (anti-aliased) and on the label mask (``label``)."""

    def __init__(self, image: np.ndarray, mask: np.ndarray) -> None:
        self.image, self.mask = image, mask

    @staticmethod
    def _fixed(points: np.ndarray) -> np.ndarray:
        return np.round(np.asarray(points, dtype=np.float64) * ONE).astype(np.int32)

    def line(self, a: np.ndarray, b: np.ndarray, thick: float, color: Color, label: int = 255) -> None:
        t = max(1, int(round(thick)))
        pa, pb = tuple(self._fixed(a)), tuple(self._fixed(b))
        cv2.line(self.image, pa, pb, color, t, cv2.LINE_AA, SHIFT)
        cv2.line(self.mask, pa, pb, (label,), t, cv2.LINE_8, SHIFT)

    def disc(self, center: np.ndarray, radius: float, color: Color, label: int = 255) -> None:
        c, r = tuple(self._fixed(center)), max(ONE // 2, int(round(radius * ONE)))
        cv2.circle(self.image, c, r, color, -1, cv2.LINE_AA, SHIFT)
        cv2.circle(self.mask, c, r, (label,), -1, cv2.LINE_8, SHIFT)

    def poly(self, points: np.ndarray | list[np.ndarray], color: Color, label: int = 255) -> None:
        pts = [self._fixed(np.asarray(points))]
        cv2.fillPoly(self.image, pts, color, cv2.LINE_AA, SHIFT)
        cv2.fillPoly(self.mask, pts, (label,), cv2.LINE_8, SHIFT)


class FlatCanvas:
    """Draws every shape into the BGR image and the label-id map with identical rasterisation."""

    def __init__(self, w: int, h: int) -> None:
        self.image = np.zeros((h, w, 3), np.uint8)
        self.label = np.zeros((h, w), np.uint8)

    def poly(self, pts, color: Color, label: int | None) -> None:
        p = np.round(np.asarray(pts, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
        cv2.fillPoly(self.image, [p], color)
        if label is not None:
            cv2.fillPoly(self.label, [p], label)

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: Color, label: int | None) -> None:
        self.poly([(x0, y0), (x1, y0), (x1, y1), (x0, y1)], color, label)

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, color: Color, label: int | None) -> None:
        c, axes = (round(cx), round(cy)), (max(1, round(rx)), max(1, round(ry)))
        cv2.ellipse(self.image, c, axes, 0, 0, 360, color, -1)
        if label is not None:
            cv2.ellipse(self.label, c, axes, 0, 0, 360, label, -1)


@functools.lru_cache(maxsize=8)
def noise_bank(w: int, h: int, seed: int, pad: int, sigmas: tuple[float, ...]) -> np.ndarray:
    """Fixed integer pixel-noise textures, one per sigma, each ``pad`` px larger than the image."""
    unit = np.random.default_rng(seed).standard_normal((h + pad, w + pad))
    return np.stack([np.round(unit * s) for s in sigmas]).astype(np.int16)


def add_noise(image: np.ndarray, texture: np.ndarray, y0: int, x0: int) -> np.ndarray:
    """``image`` plus the crop of ``texture`` at ``(y0, x0)`` on every channel, saturated to uint8."""
    h, w = image.shape[:2]
    crop = texture[y0 : y0 + h, x0 : x0 + w]
    return cv2.add(image, cv2.merge([crop, crop, crop]), dtype=cv2.CV_8U)


@functools.lru_cache(maxsize=4)
def texture_banks(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Fixed fine-grain and blotch textures (zero mean, unit-ish scale) cropped at random offsets."""
    gen = np.random.default_rng(12345)
    fine = gen.standard_normal((h + 64, w + 64)).astype(np.float32)
    small = gen.standard_normal(((h + 64) // 6 + 1, (w + 64) // 6 + 1)).astype(np.float32)
    blotch = cv2.resize(small, (w + 64, h + 64), interpolation=cv2.INTER_CUBIC)
    return fine, blotch / max(float(blotch.std()), 1e-6)


def maybe_blur(image: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """A 3x3 Gaussian blur with probability ``p`` (one ``rng.random()`` draw either way)."""
    return cv2.GaussianBlur(image, (3, 3), 0) if rng.random() < p else image
