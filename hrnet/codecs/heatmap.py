"""MSRA Gaussian-heatmap codec (Simple Baselines / HRNet reference semantics), vectorised.

* ``encode``: one unnormalised Gaussian (peak 1) per keypoint, centred on the heatmap pixel
  ``int(x / stride + 0.5)``, drawn inside a ``3 * sigma`` window; weight 0 for unlabeled
  keypoints and for those whose window misses the heatmap entirely.
* ``decode``: per-map argmax, then a quarter-pixel step toward the higher neighbour along x and
  y (the reference post-processing), in heatmap pixel coordinates.
* ``predict``: the one test-time path of the evaluate stage and of packages: the network on
  normalised crops, the flip test (``flip_test``, ``shift_heatmap``: settings the codec carries,
  given by ``evaluate.pose`` or a package's metadata), ``decode``, then the inverse crop affine.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import numpy as np
import torch

from hrnet.data.keypoint_meta import COCO_PERSON
from hrnet.data.transforms import affine_transform_points, get_affine_transform

HeatmapArray = np.ndarray | torch.Tensor
HeatmapModel = Callable[[torch.Tensor], torch.Tensor]


class MSRAHeatmapCodec:
    """Keypoints <-> Gaussian heatmaps. Sizes are ``(width, height)``.

    ``unbiased=True`` centres each Gaussian on the exact sub-pixel location instead of the
    rounded pixel (not the reference behaviour; off by default). The test-time settings, used by
    :meth:`predict` only: ``flip_test`` (average with the mirrored crop's heatmaps), ``shift_heatmap``
    (move those one pixel right, as the reference does) and ``flip_indices``, the left/right
    permutation of the keypoints (:attr:`KeypointMeta.flip_indices` of the data; COCO's by default).
    """

    def __init__(
        self,
        input_size: Sequence[int],
        heatmap_size: Sequence[int],
        sigma: float = 2.0,
        unbiased: bool = False,
        *,
        flip_test: bool = True,
        shift_heatmap: bool = True,
        flip_indices: Sequence[int] = COCO_PERSON.flip_indices,
    ) -> None:
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.heatmap_size = (int(heatmap_size[0]), int(heatmap_size[1]))
        if min(self.input_size + self.heatmap_size) <= 0 or sigma <= 0:
            raise ValueError(f"invalid codec sizes {input_size}/{heatmap_size} or sigma {sigma}")
        self.sigma = float(sigma)
        self.unbiased = unbiased
        self.flip_test, self.shift_heatmap = bool(flip_test), bool(shift_heatmap)
        self.flip_indices = flip_indices
        self.stride = np.array(self.input_size, dtype=np.float64) / np.array(self.heatmap_size)
        w, h = self.heatmap_size
        self._xs = np.arange(w, dtype=np.float32)
        self._ys = np.arange(h, dtype=np.float32)

    def __repr__(self) -> str:
        return (
            f"MSRAHeatmapCodec(input_size={self.input_size}, heatmap_size={self.heatmap_size}, "
            f"sigma={self.sigma}, unbiased={self.unbiased}, flip_test={self.flip_test}, "
            f"shift_heatmap={self.shift_heatmap})"
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

    def with_test(self, **settings: bool) -> MSRAHeatmapCodec:
        """A copy with other test-time settings: ``flip_test``, ``shift_heatmap``."""
        unknown = set(settings) - {"flip_test", "shift_heatmap"}
        if unknown:
            raise ValueError(f"unknown test-time settings {sorted(unknown)}; known: flip_test, shift_heatmap")
        codec = copy.copy(self)
        for name, value in settings.items():
            setattr(codec, name, bool(value))
        return codec

    def flip_back(self, heatmaps: torch.Tensor) -> torch.Tensor:
        """Heatmaps (N, K, H, W) predicted on mirrored crops, brought back to the original frame.

        Mirrors along W, puts channel ``flip_indices[k]`` at ``k`` (left <-> right) and, with
        ``shift_heatmap``, moves the maps one pixel right (column 0 is kept), as the reference does.
        """
        if heatmaps.ndim != 4:
            raise ValueError(f"heatmaps must be (N, K, H, W), got shape {tuple(heatmaps.shape)}")
        if heatmaps.shape[1] != len(self.flip_indices):
            raise ValueError(f"{heatmaps.shape[1]} heatmaps, but {len(self.flip_indices)} flip indices")
        out = heatmaps.flip(-1)[:, list(self.flip_indices)]
        if self.shift_heatmap:
            out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
        return out

    @torch.no_grad()
    def predict(
        self,
        model: HeatmapModel,
        images: torch.Tensor,
        centers: np.ndarray,
        scales: np.ndarray,
        heatmaps: torch.Tensor | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The test-time path: normalised crops (N, 3, h, w) cut at ``centers``/``scales`` (N, 2)
        -> keypoints (N, K, 2) in image pixels and their scores (N, K).

        With ``flip_test`` the mirrored batch is run too; its heatmaps, brought back by
        :meth:`flip_back`, are averaged in before decoding. ``heatmaps``: ``model(images)`` when the
        caller already has it (validation, which also needs it for the loss).
        """
        heatmaps = model(images) if heatmaps is None else heatmaps
        if self.flip_test:
            heatmaps = (heatmaps + self.flip_back(model(torch.flip(images, dims=[3])))) * 0.5
        return self.decode_keypoints(heatmaps, centers, scales)

    def decode_keypoints(
        self, heatmaps: HeatmapArray, centers: np.ndarray, scales: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Heatmaps (N, K, H, W) of crops at ``centers``/``scales`` (N, 2) -> keypoints (N, K, 2) in
        image pixels (:meth:`decode`, then the inverse crop affine) and scores (N, K), the maxima."""
        if isinstance(heatmaps, torch.Tensor):
            heatmaps = heatmaps.detach().float().cpu().numpy()
        if heatmaps.ndim == 4 and heatmaps.shape[:-3:-1] != self.heatmap_size:
            raise ValueError(
                f"heatmaps are {heatmaps.shape[-1]}x{heatmaps.shape[-2]} (width x height); this codec "
                f"decodes {self.heatmap_size[0]}x{self.heatmap_size[1]}"
            )
        coords, maxvals = self.decode(heatmaps)
        if len(coords):
            keypoints = transform_preds(coords, np.asarray(centers), np.asarray(scales), self.heatmap_size)
        else:
            keypoints = np.zeros((0, heatmaps.shape[1], 2))
        return keypoints, maxvals[..., 0]  # (N, K, 1) -> (N, K); reshape(0, -1) fails for N = 0


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
