"""What the train stage reads besides the task's own section: ``model`` and ``train``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, field_validator

from hrnet.models.configs import MODEL_CONFIGS
from hrnet.models.registries import NECKS, RESNET_FPN_MODELS
from hrnet.tasks import TASKS
from pipeline.params.base import Section

# no meaning on a ResNet
HRNET_ONLY = ("align_corners", "fusion", "fusion_downsample", "fusion_op", "streams")


class ModelConfig(Section):
    """The network: variant, representation head, ablation options (hrnet.models.configs.HRNetConfig);
    or, for detection, a ResNet-FPN (``resnet18``, ``resnet50``: head and HRNet options at defaults)."""

    name: str = "hrnet_w18_small"
    head: str | None = Field(
        None, description="a registered head (v1, v2, v2p); null: the paper's for the task"
    )
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

    @field_validator("head")
    @classmethod
    def _registered_head(cls, value: str | None) -> str | None:
        if value is not None and value not in NECKS:
            raise ValueError(f"expected one of {list(NECKS.names())} (the registered heads), got {value!r}")
        return value

    @field_validator("name")
    @classmethod
    def _known_variant(cls, value: str) -> str:
        if value not in MODEL_CONFIGS and value not in RESNET_FPN_MODELS:
            names = [*sorted(MODEL_CONFIGS), *RESNET_FPN_MODELS]
            raise ValueError(f"expected one of {names} (ResNet-FPNs: task detection only), got {value!r}")
        return value

    def resnet_fpn_problem(self, task: str) -> str | None:
        """Why this section cannot build a ResNet-FPN for ``task`` (one line naming the key), or None:
        a ResNet-FPN serves detection only, has its own pyramid (head null / v2p) and none of the
        HRNet options (each must keep its default)."""
        if self.name not in RESNET_FPN_MODELS:
            return None
        if task != "detection":
            return (
                f"model.name: {self.name!r} is a ResNet-FPN detection backbone; task {task!r} "
                f"expects an HRNet variant (one of {sorted(MODEL_CONFIGS)})"
            )
        if self.head not in (None, "v2p"):
            return f"model.head: {self.name} has its own FPN pyramid; expected null or v2p, got {self.head!r}"
        for key in HRNET_ONLY:
            default, value = type(self).model_fields[key].default, getattr(self, key)
            if value != default:
                return f"model.{key}: applies to HRNet only; {self.name} expects {default!r}, got {value!r}"
        return None


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
    # torch.compile's backend: inductor generates kernels (CPU: needs a C++ compiler); aot_eager traces
    # forward and backward the same way and runs them eagerly (finds graph breaks without codegen)
    compile_backend: Literal["inductor", "cudagraphs", "aot_eager", "eager"] = "inductor"
    limit_train_batches: float | int | None = None
    check_val_every_n_epoch: int = Field(
        1, ge=1, description="validate while training every N epochs; evaluate scores the final model"
    )
    deterministic: bool | Literal["warn"] | None = Field(
        None,
        description="null: true on CPU; on accelerators warn (some CUDA backward ops have no "
        "deterministic kernel), false for detection (RoIAlign's deterministic version is compiled)",
    )

    @property
    def distributed(self) -> bool:
        return self.num_nodes > 1 or self.devices not in (1, "auto")

    def deterministic_mode(self, task: str, accelerator: str | None = None) -> bool | str:
        """What Lightning's ``Trainer(deterministic=...)`` gets for ``task`` on ``accelerator``
        (default: this section's)."""
        if self.deterministic is not None:
            return self.deterministic
        if (accelerator or self.accelerator) == "cpu":
            return True
        return "warn" if TASKS.get(task).deterministic_on_accelerators else False
