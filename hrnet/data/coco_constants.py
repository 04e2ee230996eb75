"""COCO person-keypoint metadata, as published in the COCO annotation files."""

from __future__ import annotations

from collections.abc import Sequence

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


def flip_permutation(
    num_keypoints: int = NUM_KEYPOINTS, pairs: Sequence[Sequence[int]] = FLIP_PAIRS
) -> tuple[int, ...]:
    """Index map ``perm`` such that ``flipped[k] = original[perm[k]]`` swaps every pair."""
    perm = list(range(num_keypoints))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return tuple(perm)


# The one flip permutation of COCO's keypoints: the dataset's flip augmentation and the codec's flip
# test both index with it.
FLIP_INDICES: tuple[int, ...] = flip_permutation()


# The 80 COCO detection categories as (id, name, supercategory), ids as in the annotation files.
_SUPERCATEGORY_IDS: dict[str, tuple[int, ...]] = {
    "person": (1,), "vehicle": tuple(range(2, 10)), "outdoor": (10, 11, 13, 14, 15),
    "animal": tuple(range(16, 26)), "accessory": (27, 28, 31, 32, 33), "sports": tuple(range(34, 44)),
    "kitchen": (44, 46, 47, 48, 49, 50, 51), "food": tuple(range(52, 62)),
    "furniture": (62, 63, 64, 65, 67, 70), "electronic": tuple(range(72, 78)),
    "appliance": tuple(range(78, 83)), "indoor": tuple(range(84, 91)),
}  # fmt: skip
_CATEGORY_NAMES: dict[int, str] = {
    1: "person", 2: "bicycle", 3: "car", 4: "motorcycle", 5: "airplane", 6: "bus", 7: "train", 8: "truck",
    9: "boat", 10: "traffic light", 11: "fire hydrant", 13: "stop sign", 14: "parking meter", 15: "bench",
    16: "bird", 17: "cat", 18: "dog", 19: "horse", 20: "sheep", 21: "cow", 22: "elephant", 23: "bear",
    24: "zebra", 25: "giraffe", 27: "backpack", 28: "umbrella", 31: "handbag", 32: "tie", 33: "suitcase",
    34: "frisbee", 35: "skis", 36: "snowboard", 37: "sports ball", 38: "kite", 39: "baseball bat",
    40: "baseball glove", 41: "skateboard", 42: "surfboard", 43: "tennis racket", 44: "bottle",
    46: "wine glass", 47: "cup", 48: "fork", 49: "knife", 50: "spoon", 51: "bowl", 52: "banana", 53: "apple",
    54: "sandwich", 55: "orange", 56: "broccoli", 57: "carrot", 58: "hot dog", 59: "pizza", 60: "donut",
    61: "cake", 62: "chair", 63: "couch", 64: "potted plant", 65: "bed", 67: "dining table", 70: "toilet",
    72: "tv", 73: "laptop", 74: "mouse", 75: "remote", 76: "keyboard", 77: "cell phone", 78: "microwave",
    79: "oven", 80: "toaster", 81: "sink", 82: "refrigerator", 84: "book", 85: "clock", 86: "vase",
    87: "scissors", 88: "teddy bear", 89: "hair drier", 90: "toothbrush",
}  # fmt: skip
COCO_CATEGORIES: tuple[dict, ...] = tuple(
    {"supercategory": sup, "id": cid, "name": _CATEGORY_NAMES[cid]}
    for sup, ids in _SUPERCATEGORY_IDS.items()
    for cid in ids
)
assert len(COCO_CATEGORIES) == 80 and sorted(c["id"] for c in COCO_CATEGORIES) == sorted(_CATEGORY_NAMES)


def coco_category(name: str) -> dict:
    """The COCO category entry (``supercategory``, ``id``, ``name``) called ``name``."""
    for category in COCO_CATEGORIES:
        if category["name"] == name:
            return dict(category)
    raise KeyError(f"{name!r} is not one of COCO's 80 category names")
