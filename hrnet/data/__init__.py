"""Pose data: COCO metadata, the synthetic COCO generator, the COCO reader, top-down transforms
and the dataset/DataModule.

Submodules: ``coco_constants``, ``synthetic`` (``generate_coco_keypoints``), ``coco_reader``
(``coco_layout``, ``load_person_instances``), ``transforms`` and ``pose_dataset``
(``TopDownPoseDataset``, ``PoseDataModule``, ``write_index``/``read_index``). Only the light
modules are imported here; import ``hrnet.data.pose_dataset`` for the Lightning parts.
"""

from hrnet.data.coco_constants import (
    FLIP_PAIRS,
    KEYPOINT_NAMES,
    LOWER_BODY_IDS,
    NUM_KEYPOINTS,
    OKS_SIGMAS,
    PERSON_CATEGORY,
    SKELETON,
    UPPER_BODY_IDS,
)
from hrnet.data.coco_reader import coco_layout, load_person_instances

__all__ = [
    "FLIP_PAIRS",
    "KEYPOINT_NAMES",
    "LOWER_BODY_IDS",
    "NUM_KEYPOINTS",
    "OKS_SIGMAS",
    "PERSON_CATEGORY",
    "SKELETON",
    "UPPER_BODY_IDS",
    "coco_layout",
    "load_person_instances",
]
