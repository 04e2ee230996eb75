"""Test-time and packaging settings: ``evaluate`` and ``package`` (they never rerun train or tune)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from pipeline.params.base import Section
from pipeline.params.training import Accelerator, DeviceCount, Precision

GROUND_TRUTH_BOXES = "data/prepared"  # evaluate.pose.boxes naming the prepared split: its own boxes


class PersonDetectorConfig(Section):
    """The person_detector stage (detector/dvc.yaml): ``model.name`` with head v2p and the
    ``detection`` section's settings, trained on the person boxes of the prepared pose train split."""

    epochs: int = Field(2, ge=1)
    limit_train_batches: int | None = Field(None, ge=1)


class PoseTestConfig(Section):
    flip_test: bool = True
    shift_heatmap: bool = True
    keypoint_score_threshold: float = Field(
        0.2, ge=0, le=1, description="in_vis_thre: joints above it make the person score and are drawn"
    )
    boxes: str = Field(
        GROUND_TRUTH_BOXES,
        min_length=1,
        description="data/prepared: the ground-truth boxes | a COCO results json of person detections",
    )
    box_score_threshold: float = Field(0.0, ge=0, description="detected boxes scoring below are left out")
    oks_nms_threshold: float = Field(0.9, gt=0, le=1)
    soft_nms: bool = False
    person_detector: PersonDetectorConfig = PersonDetectorConfig()

    @property
    def ground_truth_boxes(self) -> bool:
        return Path(self.boxes).as_posix().rstrip("/") == GROUND_TRUTH_BOXES


class SegmentationTestConfig(Section):
    mode: Literal["whole", "sliding"] = "whole"
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    @field_validator("scales")
    @classmethod
    def _positive(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value or any(v <= 0 for v in value):
            raise ValueError(f"expected a non-empty list of positive scales, got {list(value)}")
        return value


class DetectionTestConfig(Section):
    score_threshold: float = Field(0.05, ge=0, le=1)


class EvaluateConfig(Section):
    """Test-time settings: changing them reruns evaluate and package only, never train or tune."""

    num_figures: int = Field(4, ge=0)
    accelerator: Accelerator | None = Field(None, description="null: train.accelerator")
    devices: DeviceCount | None = Field(
        None, description="on one node: >= 1, -1 for all, or auto (> 1: DDP); null: train.devices"
    )
    precision: Precision | None = Field(None, description="null: train.precision")
    pose: PoseTestConfig = PoseTestConfig()
    segmentation: SegmentationTestConfig = SegmentationTestConfig()
    detection: DetectionTestConfig = DetectionTestConfig()


class PackageConfig(Section):
    name: str | None = None
    format: Literal["torch_export", "onnx"] = Field(
        "torch_export",
        description="torch_export: model.pt2 | onnx: model.onnx (onnxruntime; detection: + torchvision NMS)",
    )
    tolerance: float = Field(
        1e-3, gt=0, description="largest |export - PyTorch| allowed on val images at packaging time"
    )
    check_images: int = Field(4, ge=1, description="val images the export is checked on")
    precision: Literal["fp32", "bf16", "int8"] = Field(
        "fp32",
        description="int8: ONNX, onnxruntime static quantization | bf16: the torch program under "
        "CPU autocast, refused where this CPU lacks native bf16 and runs it slower than fp32",
    )
    calibration_images: int = Field(32, ge=1, description="train crops int8 activation ranges come from")
    max_metric_drop: float = Field(
        1.0, ge=0, description="largest drop of the packaged val metric below fp32's (0-100 points)"
    )
