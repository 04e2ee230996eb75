"""Model factory: named variants x representation heads x tasks, assembled from parts."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from hrnet.registry import RegistryError

from .backbone import HighResolutionNet
from .configs import MODEL_CONFIGS
from .features import HRNetFeatures, _check_head, create_backbone, resolve_config  # noqa: F401
from .necks import build_neck
from .registries import RESNET_FPN_MODELS, TASK_MODELS
from .weights import load_pretrained

Neck = nn.Module  # a registered neck: out_channels, strides, map_head()


def list_models(task: str | None = None) -> list[str]:
    """The HRNet variants, which every task accepts; ``task="detection"`` adds the ResNet-FPN
    backbones (``resnet18``, ``resnet50``) that :func:`create_model` builds for detection only."""
    extra = list(RESNET_FPN_MODELS) if task == "detection" else []
    return sorted(MODEL_CONFIGS) + sorted(extra)


class PoseModel(nn.Module):
    """Heatmap regression: a 1x1 conv (``final_layer``) on the finest map -> (N, K, H/4, W/4).

    ``level_norm`` is the neck's ``map_head()``. On V2p, BatchNorm + ReLU: the HRFPN level is a purely
    linear map (1x1 then 3x3 conv, no normalisation or activation, kept so for detection), zero-mean and about
    3.6x the scale of the backbone's BN + ReLU output at init, so each Adam step moved the heatmaps
    ~10x more than on V1: the first epoch's mean train loss was 1.6x V1's (tests/test_v2p_pose.py).
    On V2 it is the official V2 head of the heatmap tasks (HRNet facial landmarks; segmentation's
    ``last_layer`` too): 1x1 conv + BatchNorm + ReLU. Fed straight to the predictor, the 240 concatenated
    channels of W18-small (16 on V1) made each Adam step move the heatmaps ~11x more than on V1, and V2
    pose reached 4 AP where V1 reached 23 (reports/studies/heads.md). V1 reads a BN + ReLU output
    already: ``nn.Identity``, no new keys.

    When the neck reads a coarser branch (the resolution study, ``read_branch`` > 0) the heatmaps
    are upsampled bilinearly to 1/4 of the input, where the targets are.
    """

    def __init__(self, backbone: HighResolutionNet, neck: Neck, num_outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.level_norm = neck.map_head()
        self.final_layer = nn.Conv2d(neck.out_channels, num_outputs, kernel_size=1)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, x: Tensor) -> Tensor:
        heatmaps = self.final_layer(self.level_norm(self.neck(self.backbone(x))["0"]))
        size = (-(-x.shape[-2] // 4), -(-x.shape[-1] // 4))  # the stride-4 branch: ceil(H/4) x ceil(W/4)
        if tuple(heatmaps.shape[-2:]) != size:
            heatmaps = F.interpolate(
                heatmaps, size=size, mode="bilinear", align_corners=self.backbone.config.align_corners
            )
        return heatmaps


class SegmentationModel(nn.Module):
    """Per-pixel logits as in the official segmentation code (``last_layer.0/1/3``) -> (N, C, H/4, W/4)."""

    def __init__(self, backbone: HighResolutionNet, neck: Neck, num_outputs: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        ch = neck.out_channels
        self.last_layer = nn.Sequential(
            nn.Conv2d(ch, ch, kernel_size=1),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(ch, num_outputs, kernel_size=1),
        )
        for m in self.last_layer:
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, std=0.001)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.last_layer(self.neck(self.backbone(x))["0"])


@dataclass(frozen=True)
class TaskModel:
    """A task's network as :func:`create_model` builds it (:data:`~hrnet.models.registries.TASK_MODELS`):
    ``build(name, head, num_outputs, pretrained, pyramid_channels, read_branch, overrides)``; ``dense``:
    one output map at 1/4 of the input (what ``hrnet summary`` and ``hrnet bench`` measure), with
    ``default_outputs`` channels."""

    build: Callable[..., nn.Module]
    dense: bool = True
    default_outputs: int = 1


def dense_tasks() -> tuple[str, ...]:
    """The registered task models with one output map."""
    return tuple(name for name, model in TASK_MODELS.items() if model.dense)


def _dense_builder(model_class: type[nn.Module], reads_branch: bool = False) -> Callable[..., nn.Module]:
    def build(name: str, head: str, num_outputs: int, pretrained: str | Path | None, pyramid_channels: int,
              read_branch: int, overrides: dict[str, Any]) -> nn.Module:  # fmt: skip
        if name in RESNET_FPN_MODELS:
            raise ValueError(f"{name} is a ResNet-FPN detection backbone; this task needs an HRNet variant")
        config = resolve_config(name, **overrides)
        _check_head(head)
        if read_branch and (not reads_branch or head != "v1"):
            raise ValueError(
                f"read_branch={read_branch} needs a heatmap model (pose) with head 'v1' (got {head})"
            )
        # V1 only consumes branch 0, so the last module skips fusing into the other branches (official pose)
        backbone = HighResolutionNet(config, multi_scale_output=head != "v1" or read_branch != 0)
        neck = build_neck(
            head,
            backbone.out_channels,
            pyramid_channels,
            config.align_corners,
            num_levels=1,
            branch=read_branch,
        )
        model = model_class(backbone, neck, num_outputs)
        if pretrained is not None:
            load_pretrained(model, pretrained)
        return model

    return build


POSE_MODEL = TaskModel(_dense_builder(PoseModel, reads_branch=True), default_outputs=17)
SEGMENTATION_MODEL = TaskModel(_dense_builder(SegmentationModel), default_outputs=19)


def create_model(
    name: str,
    task: str = "pose",
    head: str = "v1",
    num_outputs: int = 17,
    pretrained: str | Path | None = None,
    pyramid_channels: int = 256,
    read_branch: int = 0,
    **overrides: Any,
) -> nn.Module:
    """Build a task model: ``backbone`` -> ``neck`` (v1/v2/v2p) -> the head of ``task`` (a name in
    :data:`~hrnet.models.registries.TASK_MODELS`: "pose", "segmentation", "detection").

    ``num_outputs`` is the number of keypoints (pose), classes (segmentation) or object categories
    (detection: a torchvision detector from :func:`hrnet.models.detection.build_detector`, whose
    options, e.g. ``detector="fcos"``, ``min_size``, go in ``overrides`` too). ``overrides``
    replace config fields, e.g. ``upsample_mode="bilinear"`` as in the official segmentation code,
    or the architecture options ``fusion``, ``fusion_downsample``, ``fusion_op``, ``streams``.
    ``pyramid_channels``: width of the V2p level (256 in the paper); these models read only the
    finest level, so only that one is computed. ``read_branch`` (pose, head v1): estimate the
    heatmaps from that branch (0: stride 4 ... 3: stride 32), the paper's resolution study.
    ``pretrained`` is a checkpoint path loaded with :func:`load_pretrained`.
    """
    try:
        task_model = TASK_MODELS.get(task)
    except RegistryError as exc:
        raise ValueError(str(exc)) from None
    return task_model.build(name, head, num_outputs, pretrained, pyramid_channels, read_branch, overrides)
