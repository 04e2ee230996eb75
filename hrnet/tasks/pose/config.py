"""Pose's params sections: ``pose`` (training), ``evaluate.pose`` (test time) and
``data.synthetic.pose`` (the embedded dataset). Their defaults are the project's defaults."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le, Lt

from hrnet.tasks.base import config_section, multiple_of_32

GROUND_TRUTH_BOXES = "data/prepared"  # evaluate.pose.boxes naming the prepared split: its own boxes


@config_section
class AugmentConfig:
    flip: bool = True
    rot_factor: Annotated[float, Ge(0)] = 40.0
    scale_factor: Annotated[float, Ge(0), Lt(1)] = 0.35
    rot_prob: Annotated[float, Ge(0), Le(1)] = 0.6
    half_body_prob: Annotated[float, Ge(0), Le(1)] = 0.3
    num_joints_half_body: Annotated[int, Ge(1)] = 8


@config_section
class PoseConfig:
    """Top-down pose: input (width, height), Gaussian targets, optimisation."""

    input_size: tuple[int, int] = (96, 128)
    sigma: Annotated[float, Gt(0)] = 2.0
    batch_size: Annotated[int, Ge(1)] = 32
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: Annotated[float, Gt(0)] = 1e-3
    weight_decay: Annotated[float, Ge(0)] = 0.0
    momentum: Annotated[float, Ge(0), Lt(1)] = 0.9
    lr_milestones: tuple[int, ...] = (12, 15)
    lr_factor: Annotated[float, Gt(0), Le(1)] = 0.1
    augment: AugmentConfig = AugmentConfig()
    eval_batch_size: Annotated[int, Ge(1)] = 64
    read_branch: Annotated[int, Ge(0), Le(3)] = 0  # the branch heatmaps are read from (head v1)
    # the data's keypoint set (hrnet.data.keypoint_meta), read by prepare: null derives the pairs from
    # left_/right_ names; else [[a, b], ...] of keypoint names or 0-based indices
    flip_pairs: tuple[tuple[str | int, str | int], ...] | None = None
    # one per keypoint; null: COCO's for COCO's 17 person keypoints (any other set must give them)
    oks_sigmas: tuple[Annotated[float, Gt(0)], ...] | None = None

    def __post_init__(self) -> None:
        multiple_of_32("input_size", self.input_size)
        milestones = list(self.lr_milestones)
        if milestones != sorted(milestones) or any(m < 1 for m in milestones):
            raise ValueError(f"lr_milestones: expected increasing positive epochs, got {milestones}")

    @property
    def heatmap_size(self) -> tuple[int, int]:
        width, height = self.input_size
        return width // 4, height // 4


@config_section
class PersonDetectorConfig:
    """The person_detector stage (detector/dvc.yaml): ``model.name`` with head v2p and the
    ``detection`` section's settings, trained on the person boxes of the prepared pose train split."""

    epochs: Annotated[int, Ge(1)] = 2
    limit_train_batches: Annotated[int, Ge(1)] | None = None


@config_section
class PoseTestConfig:
    flip_test: bool = True
    shift_heatmap: bool = True
    # in_vis_thre: joints above it make the person score and are drawn
    keypoint_score_threshold: Annotated[float, Ge(0), Le(1)] = 0.2
    # data/prepared: the ground-truth boxes | a COCO results json of person detections
    boxes: str = GROUND_TRUTH_BOXES
    box_score_threshold: Annotated[float, Ge(0)] = 0.0  # detected boxes scoring below are left out
    oks_nms_threshold: Annotated[float, Gt(0), Le(1)] = 0.9
    soft_nms: bool = False
    person_detector: PersonDetectorConfig = PersonDetectorConfig()

    def __post_init__(self) -> None:
        if not self.boxes:
            raise ValueError("boxes: expected data/prepared or a detections file, got ''")

    @property
    def ground_truth_boxes(self) -> bool:
        return Path(self.boxes).as_posix().rstrip("/") == GROUND_TRUTH_BOXES


@config_section
class SyntheticPoseConfig:
    num_train_images: Annotated[int, Ge(1)] = 600
    num_val_images: Annotated[int, Ge(1)] = 120
    image_size: tuple[int, int] = (320, 240)
    persons_per_image: tuple[int, int] = (1, 4)
    skeleton: Literal["coco", "stick"] = "coco"  # hrnet.data.synthetic.skeletons

    def __post_init__(self) -> None:
        low, high = self.persons_per_image
        if not 1 <= low <= high:
            raise ValueError("persons_per_image: expected [min, max] with 1 <= min <= max")
