"""Detection's params sections: ``detection``, ``evaluate.detection`` and
``data.synthetic.detection``. Their defaults are the project's defaults."""

from __future__ import annotations

from typing import Annotated, Literal

from annotated_types import Ge, Gt, Le, Lt

from hrnet.models.registries import DETECTORS
from hrnet.tasks.base import config_section


@config_section
class DetectionConfig:
    """Detection: a torchvision detector assembled on the HRNet pyramid."""

    detector: str = "faster_rcnn"  # a registered framework (hrnet.models.registries.DETECTORS)
    # small: fewer proposals and a narrower box head, for small images
    preset: Literal["small", "torchvision"] = "small"
    min_size: Annotated[int, Ge(32)] = 128
    max_size: Annotated[int, Ge(32)] = 128
    anchor_scale: Annotated[float, Gt(0)] = 4.0
    batch_size: Annotated[int, Ge(1)] = 8
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: Annotated[float, Gt(0)] = 1e-3
    momentum: Annotated[float, Ge(0), Lt(1)] = 0.9
    weight_decay: Annotated[float, Ge(0)] = 1e-4
    warmup_steps: Annotated[int, Ge(0)] = 30
    schedule: Literal["step", "cosine"] = "cosine"
    lr_steps: tuple[float, ...] = (0.67, 0.89)
    lr_factor: Annotated[float, Gt(0), Le(1)] = 0.1
    flip_prob: Annotated[float, Ge(0), Le(1)] = 0.5
    eval_batch_size: Annotated[int, Ge(1)] = 8

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            names = list(DETECTORS.names())
            raise ValueError(
                f"detector: expected one of {names} (the registered frameworks), got {self.detector!r}"
            )


@config_section
class DetectionTestConfig:
    score_threshold: Annotated[float, Ge(0), Le(1)] = 0.05
    # detections kept per image, best first: the R-CNNs' and FCOS's detections_per_img, CenterNet's
    # top-K peaks; null keeps the framework's own (the small preset 50, torchvision's 100, CenterNet 100)
    max_per_image: Annotated[int, Ge(1)] | None = None


@config_section
class SyntheticDetectionConfig:
    num_train_images: Annotated[int, Ge(1)] = 320
    num_val_images: Annotated[int, Ge(1)] = 100
    image_size: tuple[int, int] = (128, 128)
    objects_per_image: tuple[int, int] = (1, 4)
