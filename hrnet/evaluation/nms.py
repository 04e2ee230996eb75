"""OKS-NMS over person instances, with the semantics of the official HRNet ``lib/nms/nms.py``.

The overlap of two people is their object keypoint similarity (OKS): for each joint
``exp(-d^2 / (2 * mean_area * (2 * sigma)^2))`` with the keypoint set's per-joint sigmas (COCO's
by default; ``sigmas``, see :mod:`hrnet.data.keypoint_meta`), averaged over the
joints. Hard NMS keeps the best-scoring person and drops everyone whose OKS with it is above
``threshold``, then repeats. Soft NMS drops nobody: it multiplies the remaining scores by
``exp(-oks^2 / threshold)`` after each pick and returns at most 20 people, in pick order.

Ties are broken as the official ``argsort()[::-1]`` breaks them: the later index first.
"""

from __future__ import annotations

import numpy as np

from hrnet.data.keypoint_meta import COCO_PERSON

COCO_SIGMAS = np.asarray(COCO_PERSON.sigmas, dtype=np.float64)

SOFT_MAX_KEPT = 20  # the official soft_oks_nms returns at most this many


def oks(
    reference: np.ndarray,
    others: np.ndarray,
    area: float,
    other_areas: np.ndarray,
    sigmas: np.ndarray = COCO_SIGMAS,
) -> np.ndarray:
    """OKS of ``reference`` (K, 2+) with each of ``others`` (M, K, 2+), areas averaged per pair."""
    variances = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    squared = ((others[:, :, :2] - reference[None, :, :2]) ** 2).sum(-1)
    mean_area = (area + other_areas[:, None]) / 2 + np.spacing(1)
    return np.exp(-squared / variances[None] / mean_area / 2).mean(-1)


def _descending(scores: np.ndarray) -> np.ndarray:
    return np.argsort(scores, kind="stable")[::-1]


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    threshold: float = 0.9,
    soft: bool = False,
    sigmas: np.ndarray | tuple[float, ...] = COCO_SIGMAS,
) -> list[int]:
    """Indices of the people kept, best first; ``keypoints`` (N, K, 3) as ``x, y, score``, K the
    number of ``sigmas``.

    ``areas`` (N,) are the people's box areas in pixels. The keypoint score column is not used,
    as in the official evaluation, which calls its NMS without ``in_vis_thre``.
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    areas = np.asarray(areas, dtype=np.float64).reshape(-1)
    sigmas = np.asarray(sigmas, dtype=np.float64)
    if keypoints.ndim != 3 or keypoints.shape[1:] != (len(sigmas), 3):
        raise ValueError(f"keypoints must be (N, {len(sigmas)}, 3), got {keypoints.shape}")
    if not len(keypoints) == len(scores) == len(areas):
        raise ValueError(f"{len(keypoints)} people, {len(scores)} scores and {len(areas)} areas")
    order = _descending(scores)
    remaining = scores[order]
    keep: list[int] = []
    while order.size and (not soft or len(keep) < SOFT_MAX_KEPT):
        best, rest = int(order[0]), order[1:]
        keep.append(best)
        overlap = oks(keypoints[best], keypoints[rest], areas[best], areas[rest], sigmas)
        if soft:
            remaining = remaining[1:] * np.exp(-(overlap**2) / threshold)
            resort = _descending(remaining)
            order, remaining = rest[resort], remaining[resort]
        else:
            order = rest[overlap <= threshold]
    return keep
