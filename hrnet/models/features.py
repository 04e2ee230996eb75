"""Feature extractors: a named HRNet variant with a representation head, returning an ordered dict
of maps with ``out_channels`` and ``strides`` (torchvision style), what every task model builds on."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from .backbone import HighResolutionNet
from .configs import HRNetConfig, get_config
from .necks import build_neck
from .registries import NECKS, RESNET_FPN_MODELS
from .weights import load_pretrained


class HRNetFeatures(nn.Module):
    """Backbone + representation head; returns ``OrderedDict[str, Tensor]`` (torchvision style)."""

    def __init__(self, backbone: HighResolutionNet, neck: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.out_channels = neck.out_channels
        self.strides = neck.strides

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return self.neck(self.backbone(x))


def resolve_config(name: str, **overrides: Any) -> HRNetConfig:
    """The named config with ``overrides`` (any :class:`HRNetConfig` field but ``name``) applied."""
    config = get_config(name)
    allowed = [f for f in HRNetConfig.field_names() if f != "name"]
    unknown = sorted(set(overrides) - set(allowed))
    if unknown:
        raise TypeError(f"unknown model option(s) {unknown}; valid options: {', '.join(allowed)}")
    return dataclasses.replace(config, **overrides) if overrides else config


def _check_head(head: str) -> None:
    if head not in NECKS:
        raise ValueError(f"unknown head {head!r}; valid heads: {', '.join(NECKS)}")


def create_backbone(
    name: str,
    head: str | None = "v2p",
    pretrained: str | Path | None = None,
    pyramid_channels: int = 256,
    **overrides: Any,
) -> nn.Module:
    """Backbone for dense prediction / detection.

    With a ``head`` ("v1", "v2", "v2p") returns :class:`HRNetFeatures` (``OrderedDict`` output,
    ``.out_channels`` (``pyramid_channels`` for v2p), ``.strides``); with ``head=None`` the bare
    :class:`HighResolutionNet` returning the list of the four branch maps. A ResNet-FPN ``name``
    (``resnet18``, ``resnet50``: detection only) builds :func:`~hrnet.models.resnet_fpn.create_resnet_fpn`.
    """
    if name in RESNET_FPN_MODELS:
        from .resnet_fpn import create_resnet_fpn  # torchvision's models load only when asked for

        return create_resnet_fpn(name, head, pretrained, pyramid_channels, **overrides)
    config = resolve_config(name, **overrides)
    if head is None:
        model: nn.Module = HighResolutionNet(config, multi_scale_output=True)
    else:
        _check_head(head)
        backbone = HighResolutionNet(config, multi_scale_output=head != "v1")
        model = HRNetFeatures(
            backbone, build_neck(head, backbone.out_channels, pyramid_channels, config.align_corners)
        )
    if pretrained is not None:
        load_pretrained(model, pretrained)
    return model
