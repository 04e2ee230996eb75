"""Faster R-CNN (torchvision's) on the feature pyramid: an RPN on every level (anchor
``anchor_scale * stride``, ratios 0.5/1/2) and ``MultiScaleRoIAlign`` over the finest four levels
(FPN practice; the single level for v1/v2), with a two-FC box head of ``representation_size``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

PROJECTION_MULTIPLE = 1


def default_anchor_sizes(strides: Sequence[int], anchor_scale: float) -> tuple[tuple[int, ...], ...]:
    """One size per pyramid level (``anchor_scale * stride``); a single level gets five octaves."""
    if len(strides) == 1:
        base = anchor_scale * strides[0]
        return (tuple(round(base * 2**i) for i in range(5)),)
    return tuple((round(anchor_scale * s),) for s in strides)


def rcnn_parts(features: nn.Module, settings: dict[str, Any]) -> dict[str, Any]:
    """What every R-CNN here shares over ``features``: the RPN's anchors (ratios 0.5/1/2), RoIAlign
    over the finest four levels and the two-FC box head of ``representation_size``."""
    strides = tuple(int(s) for s in features.strides)
    names = [str(i) for i in range(len(strides))]
    anchor_sizes = default_anchor_sizes(strides, settings["anchor_scale"])
    return {
        "rpn_anchor_generator": AnchorGenerator(anchor_sizes, ((0.5, 1.0, 2.0),) * len(anchor_sizes)),
        "box_roi_pool": MultiScaleRoIAlign(featmap_names=names[:4], output_size=7, sampling_ratio=2),
        "box_head": TwoMLPHead(features.out_channels * 7 * 7, settings["representation_size"]),
    }


def build(features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any) -> nn.Module:
    return FasterRCNN(
        features,
        **rcnn_parts(features, settings),
        box_predictor=FastRCNNPredictor(settings["representation_size"], num_classes + 1),
        box_score_thresh=settings["score_threshold"],
        min_size=settings["min_size"],
        max_size=settings["max_size"],
        **kwargs,
    )
