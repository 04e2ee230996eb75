"""COCO person-keypoint metadata, as published in the COCO annotation files."""

from __future__ import annotations

import numpy as np

KEYPOINT_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS = len(KEYPOINT_NAMES)

# 1-based limb list exactly as in COCO's person category.
SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip

PERSON_CATEGORY: dict = {
    "supercategory": "person",
    "id": 1,
    "name": "person",
    "keypoints": list(KEYPOINT_NAMES),
    "skeleton": [list(limb) for limb in SKELETON],
}

# 0-based (left, right) index pairs swapped by a horizontal flip.
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip

# Half-body augmentation groups (0-based): head, shoulders and arms vs hips and legs.
UPPER_BODY_IDS: tuple[int, ...] = tuple(range(11))
LOWER_BODY_IDS: tuple[int, ...] = tuple(range(11, 17))

# Per-keypoint OKS falloff constants used by COCO keypoint evaluation.
OKS_SIGMAS = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72,
     0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89], dtype=np.float64,
) / 10.0  # fmt: skip


def flip_permutation(num_keypoints: int = NUM_KEYPOINTS, pairs=FLIP_PAIRS) -> list[int]:
    """Index map ``perm`` such that ``flipped[k] = original[perm[k]]`` swaps every pair."""
    perm = list(range(num_keypoints))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm
