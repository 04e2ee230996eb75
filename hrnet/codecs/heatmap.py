"""MSRA Gaussian-heatmap codec (Simple Baselines / HRNet reference semantics), vectorised.

* ``encode``: one unnormalised Gaussian (peak 1) per keypoint, centred on the heatmap pixel
  ``int(x / stride + 0.5)``, drawn inside a ``3 * sigma`` window; weight 0 for unlabeled
  keypoints and for those whose window misses the heatmap entirely.
* ``decode``: per-map argmax, then a quarter-pixel step toward the higher neighbour along x and
  y (the reference post-processing), in heatmap pixel coordinates.
* ``flip_heatmaps``: maps predicted on a mirrored crop back to the original orientation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from hrnet.data.transforms import affine_transform_points, get_affine_transform

HeatmapArray = np.ndarray | torch.Tensor


class MSRAHeatmapCodec:
    """Keypoints <-> Gaussian heatmaps. Sizes are ``(width, height)``.

    ``unbiased=True`` centres each Gaussian on the exact sub-pixel location instead of the
    rounded pixel (not the reference behaviour; off by default).
    """

    def __init__(
        self,
        input_size: Sequence[int],
        heatmap_size: Sequence[int],
        sigma: float = 2.0,
        unbiased: bool = False,
    ) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        if min(self.input_size + self.heatmap_size) <= 0 or sigma <= 0:
            raise ValueError(f"invalid codec sizes {input_size}/{heatmap_size} or sigma {sigma}")
        self.sigma = float(sigma)
        self.unbiased = unbiased
        self.stride = np.array(self.input_size, dtype=np.float64) / np.array(self.heatmap_size)
        w, h = self.heatmap_size
        self._xs = np.arange(w, dtype=np.float32)
        self._ys = np.arange(h, dtype=np.float32)

    def __repr__(self) -> str:
        return (
            f"MSRAHeatmapCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"sigma={self.sigma}, unbiased={self.unbiased})"
        )

    def encode(self, keypoints: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (K, 2) in input-crop pixels and visibility (K,) -> heatmaps (K, H, W), weights (K,)."""
        kps = np.asarray(keypoints, dtype=np.float64).reshape(-1, 2)
        vis = np.asarray(visibility, dtype=np.float32).reshape(-1)
        w, h = self.heatmap_size
        radius = self.sigma * 3
        scaled = kps / self.stride
        mu = np.trunc(scaled + 0.5)  # int(x + 0.5) as in the reference (truncation toward 0)
        # Window [ul, br) per axis, with the reference's integer truncation.
        ul = np.trunc(mu - radius)
        br = np.trunc(mu + radius + 1)
        size = np.array([w, h])
        lo = np.clip(ul, 0, size)
        hi = np.clip(br, 0, size)
        inside = np.all(hi > lo, axis=1)  # some part of the window lies on the heatmap
        weight = np.where(inside, np.clip(vis, 0.0, 1.0), 0.0).astype(np.float32)

        centre = scaled if self.unbiased else mu
        two_s2 = 2.0 * self.sigma**2
        gx = np.exp(-((self._xs[None, :] - centre[:, :1]) ** 2) / two_s2).astype(np.float32)
        gy = np.exp(-((self._ys[None, :] - centre[:, 1:]) ** 2) / two_s2).astype(np.float32)
        gx *= (self._xs[None, :] >= lo[:, :1]) & (self._xs[None, :] < hi[:, :1])
        gy *= (self._ys[None, :] >= lo[:, 1:]) & (self._ys[None, :] < hi[:, 1:])
        active = (weight > 0.5).astype(np.float32)  # reference draws only where weight > 0.5
        heatmaps = gy[:, :, None] * (gx * active[:, None])[:, None, :]
        return heatmaps.astype(np.float32, copy=False), weight

    def decode(self, heatmaps: HeatmapArray) -> tuple[HeatmapArray, HeatmapArray]:
        """Heatmaps (N, K, H, W) -> coords (N, K, 2) in heatmap pixels, maxvals (N, K, 1).

        Returns numpy for numpy input and tensors (same device) for tensor input.
        """
        is_numpy = isinstance(heatmaps, np.ndarray)
        hm = torch.from_numpy(heatmaps) if is_numpy else heatmaps.detach()
        if hm.ndim != 4:
            raise ValueError(f"heatmaps must be (N, K, H, W), got shape {tuple(hm.shape)}")
        hm = hm.float()
        n, k, h, w = hm.shape
        flat = hm.reshape(n, k, h * w)
        idx = flat.argmax(dim=2)  # first maximum, like numpy
        maxvals = flat.gather(2, idx.unsqueeze(-1)).squeeze(-1)
        px = idx % w
        py = torch.div(idx, w, rounding_mode="floor")
        positive = maxvals > 0
        px = torch.where(positive, px, torch.zeros_like(px))
        py = torch.where(positive, py, torch.zeros_like(py))
        coords = torch.stack([px, py], dim=-1).float()

        # Quarter-pixel refinement, only strictly inside (1 < p < size - 1) like the reference.
        ok = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
        xm, xp = (px - 1).clamp(0, w - 1), (px + 1).clamp(0, w - 1)
        ym, yp = (py - 1).clamp(0, h - 1), (py + 1).clamp(0, h - 1)

        def at(yy: torch.Tensor, xx: torch.Tensor) -> torch.Tensor:
            return flat.gather(2, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

        dx = at(py, xp) - at(py, xm)
        dy = at(yp, px) - at(ym, px)
        step = torch.stack([torch.sign(dx), torch.sign(dy)], dim=-1) * 0.25
        coords = coords + step * ok.unsqueeze(-1)
        maxvals = maxvals.unsqueeze(-1)
        if is_numpy:
            return coords.numpy(), maxvals.numpy()
        return coords, maxvals

    def decode_to_image(
        self, heatmaps: HeatmapArray, centers: np.ndarray, scales: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Decode and map back to original-image pixels: coords (N, K, 2), maxvals (N, K, 1)."""
        coords, maxvals = self.decode(heatmaps)
        if isinstance(coords, torch.Tensor):
            coords, maxvals = coords.cpu().numpy(), maxvals.cpu().numpy()
        out = transform_preds(coords, np.asarray(centers), np.asarray(scales), self.heatmap_size)
        return out.astype(np.float32), maxvals


def flip_heatmaps(
    heatmaps: torch.Tensor, flip_pairs: Sequence[Sequence[int]], shift: bool = True
) -> torch.Tensor:
    """Heatmaps (N, K, H, W) predicted on a mirrored input, brought back to the original frame.

    Mirrors along W, swaps each (left, right) channel pair and, with ``shift``, moves the maps one
    pixel right (column 0 is kept), as the reference flip test does.
    """
    if heatmaps.ndim != 4:
        raise ValueError(f"heatmaps must be (N, K, H, W), got shape {tuple(heatmaps.shape)}")
    perm = list(range(heatmaps.shape[1]))
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    out = heatmaps.flip(-1)[:, perm]
    if shift:
        out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
    return out


def transform_preds(
    coords: np.ndarray, center: np.ndarray, scale: np.ndarray, heatmap_size: Sequence[int]
) -> np.ndarray:
    """Heatmap-pixel coords back to image pixels through the inverse crop affine (no rotation).

    ``coords`` is (K, 2) with center/scale (2,), or (N, K, 2) with center/scale (N, 2).
    """
    coords = np.asarray(coords, dtype=np.float64)
    if coords.ndim == 2:
        mat = get_affine_transform(center, scale, 0, heatmap_size, inv=True)
        return affine_transform_points(coords[:, :2], mat)
    centers = np.asarray(center).reshape(len(coords), 2)
    scales = np.asarray(scale).reshape(len(coords), 2)
    out = np.empty(coords.shape[:2] + (2,), dtype=np.float64)
    for i in range(len(coords)):
        mat = get_affine_transform(centers[i], scales[i], 0, heatmap_size, inv=True)
        out[i] = affine_transform_points(coords[i, :, :2], mat)
    return out
