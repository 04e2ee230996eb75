"""The ``data`` section: which dataset, where, and the size of the embedded synthetic one."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from pipeline.params.base import Section


class SyntheticPoseConfig(Section):
    num_train_images: int = Field(600, ge=1)
    num_val_images: int = Field(120, ge=1)
    image_size: tuple[int, int] = (320, 240)
    persons_per_image: tuple[int, int] = (1, 4)

    @field_validator("persons_per_image")
    @classmethod
    def _ordered(cls, value: tuple[int, int]) -> tuple[int, int]:
        if not 1 <= value[0] <= value[1]:
            raise ValueError("expected [min, max] with 1 <= min <= max")
        return value


class SyntheticSegmentationConfig(Section):
    num_train_images: int = Field(300, ge=1)
    num_val_images: int = Field(50, ge=1)
    image_size: tuple[int, int] = (512, 256)


class SyntheticDetectionConfig(Section):
    num_train_images: int = Field(320, ge=1)
    num_val_images: int = Field(100, ge=1)
    image_size: tuple[int, int] = (128, 128)
    objects_per_image: tuple[int, int] = (1, 4)


class SyntheticConfig(Section):
    """Size of the embedded dataset that the prepare stage generates for each task."""

    pose: SyntheticPoseConfig = SyntheticPoseConfig()
    segmentation: SyntheticSegmentationConfig = SyntheticSegmentationConfig()
    detection: SyntheticDetectionConfig = SyntheticDetectionConfig()


REAL_SOURCES = {"pose": "coco", "segmentation": "cityscapes", "detection": "coco"}


SYNTHETIC_ROOT = "data/synthetic"  # where the synthesize stage writes the embedded dataset


class DataConfig(Section):
    source: Literal["synthetic", "coco", "cityscapes"] = "synthetic"
    root: str = Field(SYNTHETIC_ROOT, min_length=1, description="the dataset folder; a DVC dependency")
    train_split: str = "train"
    val_split: str = "val"
    on_bad_sample: Literal["fail", "skip"] = "fail"
    synthetic: SyntheticConfig = SyntheticConfig()

    @model_validator(mode="after")
    def _root_for_real_data(self) -> DataConfig:
        if self.source != "synthetic" and Path(self.root) == Path(SYNTHETIC_ROOT):
            raise ValueError(
                f"data.root: required when data.source is {self.source!r} (the folder holding the "
                f"{self.source} dataset; got {self.root!r}, where the embedded synthetic data lives)"
            )
        return self
