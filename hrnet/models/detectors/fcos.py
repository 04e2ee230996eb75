"""FCOS (torchvision's) on the feature pyramid: one point per location, anchor size = stride (FCOS's
scale ranges derive from it)."""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator

PROJECTION_MULTIPLE = 32  # FCOS's head uses GroupNorm(32): its width must be a multiple of 32


def build(features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any) -> nn.Module:
    strides = tuple(int(s) for s in features.strides)
    anchors = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
    return FCOS(
        features, num_classes + 1, anchor_generator=anchors, score_thresh=settings["score_threshold"],
        min_size=settings["min_size"], max_size=settings["max_size"], **kwargs,
    )  # fmt: skip
