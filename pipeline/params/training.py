"""What the train stage reads: ``model``, ``train`` and the task sections ``pose``,
``segmentation`` and ``detection``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from hrnet.models.configs import MODEL_CONFIGS
from pipeline.params.base import Section


def _multiple_of_32(value: tuple[int, int]) -> tuple[int, int]:
    if any(v <= 0 or v % 32 for v in value):
        raise ValueError(f"expected [width, height] both positive multiples of 32, got {list(value)}")
    return value


PAPER_HEADS = {"pose": "v1", "segmentation": "v2", "detection": "v2p"}


class ModelConfig(Section):
    """The network: variant, representation head, ablation options (hrnet.models.configs.HRNetConfig)."""

    name: str = "hrnet_w18_small"
    head: Literal["v1", "v2", "v2p"] | None = Field(None, description="null: the paper's head for the task")
    pretrained: str | None = None
    pyramid_channels: int = Field(64, ge=1, description="width of the V2p levels (every task); paper: 256")
    align_corners: bool = Field(False, description="of every bilinear resize the model makes")
    fusion: Literal["full", "across_stage", "final"] = "full"
    fusion_downsample: Literal["strided_conv", "bilinear"] = "strided_conv"
    fusion_op: Literal["sum", "multiply"] = "sum"
    streams: Literal["progressive", "parallel"] = "progressive"

    def architecture(self) -> dict[str, Any]:
        """Keyword arguments of ``create_model`` / ``create_backbone`` beyond name, head and weights."""
        return self.model_dump(exclude={"name", "head", "pretrained"})

    @field_validator("name")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        if value not in MODEL_CONFIGS:
            raise ValueError(f"expected one of {sorted(MODEL_CONFIGS)}, got {value!r}")
        return value


def _device_count(value: int | str) -> int | str:
    if isinstance(value, int) and not (value >= 1 or value == -1):
        raise ValueError(f"expected a device count >= 1, -1 for all, or auto; got {value}")
    return value


Accelerator = Literal["cpu", "gpu", "cuda", "mps", "auto"]
DeviceCount = Annotated[int | Literal["auto"], AfterValidator(_device_count)]
Precision = Literal["32-true", "32", "bf16-mixed", "16-mixed", "64-true"]


class TrainConfig(Section):
    """Trainer settings shared by every task (Lightning's names; DDP across devices and nodes)."""

    epochs: int = Field(16, ge=1)
    num_workers: int = Field(1, ge=0)
    accelerator: Accelerator = "cpu"
    devices: DeviceCount = Field(1, description=">= 1 per node, -1 for all, or auto")
    num_nodes: int = Field(1, ge=1)
    strategy: str = Field("auto", description="auto: ddp when more than one device or node")
    precision: Precision = "32-true"
    sync_batchnorm: bool = False
    accumulate_grad_batches: int = Field(1, ge=1)
    gradient_clip_val: float | None = Field(None, ge=0)
    matmul_precision: Literal["highest", "high", "medium"] = "highest"
    compile: bool = False
    limit_train_batches: float | int | None = None
    deterministic: bool | Literal["warn"] | None = Field(
        None,
        description="null: true on CPU, warn on accelerators (some CUDA backward ops have no "
        "deterministic kernel)",
    )

    @property
    def distributed(self) -> bool:
        return self.num_nodes > 1 or self.devices not in (1, "auto")

    @property
    def deterministic_mode(self) -> bool | str:
        """What Lightning's ``Trainer(deterministic=...)`` gets."""
        if self.deterministic is not None:
            return self.deterministic
        return True if self.accelerator == "cpu" else "warn"


class AugmentConfig(Section):
    flip: bool = True
    rot_factor: float = Field(40.0, ge=0)
    scale_factor: float = Field(0.35, ge=0, lt=1)
    rot_prob: float = Field(0.6, ge=0, le=1)
    half_body_prob: float = Field(0.3, ge=0, le=1)
    num_joints_half_body: int = Field(8, ge=1, le=17)


class PoseConfig(Section):
    """Top-down pose: input, targets, optimisation and test-time settings."""

    input_size: tuple[int, int] = Field((96, 128), description="network input (width, height)")
    sigma: float = Field(2.0, gt=0)
    batch_size: int = Field(32, ge=1)
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    lr_milestones: tuple[int, ...] = (12, 15)
    lr_factor: float = Field(0.1, gt=0, le=1)
    augment: AugmentConfig = AugmentConfig()
    eval_batch_size: int = Field(64, ge=1)
    read_branch: int = Field(0, ge=0, le=3, description="branch the heatmaps are read from (head v1)")

    _input_size = field_validator("input_size")(_multiple_of_32)

    @field_validator("lr_milestones")
    @classmethod
    def _increasing(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if list(value) != sorted(value) or any(m < 1 for m in value):
            raise ValueError(f"expected increasing positive epochs, got {list(value)}")
        return value

    @property
    def heatmap_size(self) -> tuple[int, int]:
        width, height = self.input_size
        return width // 4, height // 4


class SegmentationConfig(Section):
    """Semantic segmentation: crops, loss, SGD with poly decay and inference mode."""

    crop_size: tuple[int, int] = Field((256, 128), description="training crop (width, height)")
    base_size: int | None = Field(256, ge=32, description="long side images are resized to first")
    scale_range: tuple[float, float] = (0.5, 2.0)
    flip: bool = True
    batch_size: int = Field(8, ge=1)
    lr: float = Field(0.03, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(5e-4, ge=0)
    poly_power: float = Field(0.9, gt=0)
    loss: Literal["ce", "ohem"] = "ce"
    ohem_thresh: float = Field(0.7, gt=0, le=1)
    ohem_min_kept: int = Field(100_000, ge=1)
    class_weights: Literal["cityscapes"] | None = None
    eval_batch_size: int = Field(4, ge=1)

    _crop_size = field_validator("crop_size")(_multiple_of_32)


class DetectionConfig(Section):
    """Detection: a torchvision detector assembled on the HRNet pyramid."""

    detector: Literal["faster_rcnn", "fcos"] = "faster_rcnn"
    preset: Literal["small", "torchvision"] = Field(
        "small", description="small: fewer proposals and a narrower box head, for small images"
    )
    min_size: int = Field(128, ge=32)
    max_size: int = Field(128, ge=32)
    anchor_scale: float = Field(4.0, gt=0)
    batch_size: int = Field(8, ge=1)
    optimizer: Literal["sgd", "adamw"] = "adamw"
    lr: float = Field(1e-3, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(30, ge=0)
    schedule: Literal["step", "cosine"] = "cosine"
    lr_steps: tuple[float, ...] = (0.67, 0.89)
    lr_factor: float = Field(0.1, gt=0, le=1)
    flip_prob: float = Field(0.5, ge=0, le=1)
    eval_batch_size: int = Field(8, ge=1)
