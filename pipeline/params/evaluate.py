"""Test-time and packaging settings: ``evaluate`` and ``package`` (they never rerun train or tune)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from pipeline.params.base import Section, per_task
from pipeline.params.training import Accelerator, DeviceCount, Precision


class EvaluateConfig(per_task("TestConfigs", "test_config")):  # type: ignore[misc]
    """Test-time settings: changing them reruns evaluate and package only, never train or tune.
    Besides these, ``evaluate.<task>`` holds each task's own (its ``test_config``)."""

    num_figures: int = Field(4, ge=0)
    accelerator: Accelerator | None = Field(None, description="null: train.accelerator")
    devices: DeviceCount | None = Field(
        None, description="on one node: >= 1, -1 for all, or auto (> 1: DDP); null: train.devices"
    )
    precision: Precision | None = Field(None, description="null: train.precision")


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
