"""Top-down pose inference: person crops in, image-space keypoints out.

Shared by the evaluate stage, the packaged model and ``hrnet predict`` so all three decode the
same way: optional flip test (flipped heatmaps mapped back and shifted one pixel, as in the
official code), argmax with the quarter-pixel refinement, then the inverse crop affine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec, flip_heatmaps, transform_preds
from hrnet.data.coco_constants import FLIP_PAIRS

HeatmapModel = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def predict_heatmaps(
    model: HeatmapModel,
    images: torch.Tensor,
    flip_test: bool = True,
    shift_heatmap: bool = True,
    flip_pairs: Sequence[tuple[int, int]] = FLIP_PAIRS,
) -> torch.Tensor:
    """Heatmaps for a batch of crops, averaged with the horizontally flipped pass when asked."""
    heatmaps = model(images)
    if flip_test:
        flipped = model(torch.flip(images, dims=[3]))
        heatmaps = (heatmaps + flip_heatmaps(flipped, flip_pairs, shift=shift_heatmap)) * 0.5
    return heatmaps


def heatmaps_to_keypoints(
    heatmaps: torch.Tensor | np.ndarray,
    centers: np.ndarray,
    scales: np.ndarray,
    codec: MSRAHeatmapCodec,
) -> tuple[np.ndarray, np.ndarray]:
    """Decodes heatmaps (N, K, h, w) into image coordinates (N, K, 2) and scores (N, K)."""
    if isinstance(heatmaps, torch.Tensor):
        heatmaps = heatmaps.detach().float().cpu().numpy()
    coords, maxvals = codec.decode(heatmaps)
    height, width = heatmaps.shape[-2:]
    keypoints = (
        np.stack(
            [transform_preds(coords[i], centers[i], scales[i], (width, height)) for i in range(len(coords))]
        )
        if len(coords)
        else np.zeros((0, heatmaps.shape[1], 2))
    )
    return keypoints, maxvals.reshape(maxvals.shape[0], -1)
