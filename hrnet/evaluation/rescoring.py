"""Top-down person scoring as the official HRNet evaluation does it, before COCO keypoint AP.

Each person crop (at a ground-truth or a detected box) is rescored: its box score times the mean
of its joint scores above ``in_vis_threshold`` (0 when no joint is above). Then, image by image,
OKS-NMS (hard or soft, :func:`hrnet.evaluation.oks_nms`) drops duplicate people. NMS compares
people by the area of their padded, aspect-corrected crop box, as the official code does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from hrnet.data.transforms import PIXEL_STD
from hrnet.evaluation.coco_keypoints import person_score
from hrnet.evaluation.nms import COCO_SIGMAS, oks_nms


def rescore(keypoint_scores: np.ndarray, box_scores: Sequence[float], in_vis_threshold: float) -> np.ndarray:
    """Person scores (N,): box score x mean joint score above ``in_vis_threshold``."""
    if len(box_scores) == 0:  # an image without people: reshape(0, -1) is ambiguous
        return np.zeros(0)
    keypoint_scores = np.asarray(keypoint_scores, dtype=np.float64).reshape(len(box_scores), -1)
    return np.array(
        [
            person_score(joints, float(box), in_vis_threshold)
            for joints, box in zip(keypoint_scores, box_scores)
        ]
    )


def crop_areas(scales: np.ndarray) -> np.ndarray:
    """Areas in pixels (N,) of the crop boxes whose ``scale`` (N, 2) is in ``PIXEL_STD`` units."""
    return np.prod(np.asarray(scales, dtype=np.float64).reshape(-1, 2) * PIXEL_STD, axis=1)


def nms_per_image(
    image_ids: Sequence[int],
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    threshold: float = 0.9,
    soft: bool = False,
    sigmas: Sequence[float] | np.ndarray = COCO_SIGMAS,
) -> np.ndarray:
    """Indices of the people OKS-NMS keeps in each image: images in first-seen order, people in
    pick order. ``keypoints`` (N, K, 2), ``keypoint_scores`` (N, K), ``scores`` and ``areas`` (N,)."""
    image_ids = np.asarray(image_ids).reshape(-1)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    triplets = np.concatenate([keypoints, np.asarray(keypoint_scores)[..., None]], axis=-1)
    scores, areas = np.asarray(scores).reshape(-1), np.asarray(areas).reshape(-1)
    kept: list[int] = []
    for image_id in dict.fromkeys(image_ids.tolist()):
        rows = np.flatnonzero(image_ids == image_id)
        keep = oks_nms(
            triplets[rows], scores[rows], areas[rows], threshold=threshold, soft=soft, sigmas=sigmas
        )
        kept.extend(rows[keep].tolist())
    return np.asarray(kept, dtype=np.int64)


def score_people(
    image_ids: Sequence[int],
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    box_scores: Sequence[float],
    crop_scales: np.ndarray,
    keypoint_score_threshold: float = 0.2,
    oks_nms_threshold: float = 0.9,
    soft_nms: bool = False,
    sigmas: Sequence[float] | np.ndarray = COCO_SIGMAS,
) -> tuple[np.ndarray, np.ndarray]:
    """The official scoring of top-down people, shared by the evaluate stage and ``hrnet predict``:
    :func:`rescore` each person, then :func:`nms_per_image` by crop area (``crop_scales`` (N, 2)).
    ``sigmas``: the keypoint set's OKS sigmas. Returns the indices kept and every person's score (N,)."""
    people = rescore(keypoint_scores, box_scores, keypoint_score_threshold)
    if not len(people):
        return np.zeros(0, dtype=np.int64), people
    kept = nms_per_image(
        image_ids,
        keypoints,
        keypoint_scores,
        people,
        crop_areas(crop_scales),
        oks_nms_threshold,
        soft_nms,
        sigmas,
    )
    return kept, people
