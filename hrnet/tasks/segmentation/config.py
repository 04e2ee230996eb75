"""Segmentation's params sections: ``segmentation``, ``evaluate.segmentation`` and
``data.synthetic.segmentation``. Their defaults are the project's defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le, Lt

from hrnet.tasks.base import config_section, multiple_of_32


@config_section
class SegmentationConfig:
    """Semantic segmentation: crops, loss, SGD with poly decay."""

    crop_size: tuple[int, int] = (256, 128)  # training crop (width, height)
    base_size: Annotated[int, Ge(32)] | None = 256  # the long side images are resized to first
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    batch_size: Annotated[int, Ge(1)] = 8
    lr: Annotated[float, Gt(0)] = 0.03
    momentum: Annotated[float, Ge(0), Lt(1)] = 0.9
    weight_decay: Annotated[float, Ge(0)] = 5e-4
    poly_power: Annotated[float, Gt(0)] = 0.9
    loss: Literal["ce", "ohem"] = "ce"
    ohem_thresh: Annotated[float, Gt(0), Le(1)] = 0.7
    ohem_min_kept: Annotated[int, Ge(1)] = 100_000
    class_weights: Literal["cityscapes"] | None = None
    eval_batch_size: Annotated[int, Ge(1)] = 4

    def __post_init__(self) -> None:
        multiple_of_32("crop_size", self.crop_size)


@config_section
class SegmentationTestConfig:
    mode: Literal["whole", "sliding"] = "whole"
    scales: tuple[float, ...] = (1.0,)
    flip: bool = False

    def __post_init__(self) -> None:
        if not self.scales or any(v <= 0 for v in self.scales):
            raise ValueError(f"scales: expected a non-empty list of positive scales, got {list(self.scales)}")


@config_section
class SyntheticSegmentationConfig:
    num_train_images: Annotated[int, Ge(1)] = 300
    num_val_images: Annotated[int, Ge(1)] = 50
    image_size: tuple[int, int] = (512, 256)
