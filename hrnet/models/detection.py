"""Detectors assembled from an HRNet backbone, torchvision style: the backbone returns an ordered dict
of feature maps with ``out_channels`` and ``strides``, and torchvision's Faster R-CNN or FCOS is built on it.

``create_model(name, task="detection", head="v2p", num_outputs=<categories>)`` builds one, as
:func:`build_detector` does with every option.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from torch import Tensor, nn
from torchvision.models.detection import FCOS, FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from hrnet.models.factory import create_backbone

DETECTORS = ("faster_rcnn", "fcos")
# Faster R-CNN settings for ~128-256 px images on a CPU (torchvision's defaults target 800 px COCO).
SMALL_IMAGE_SETTINGS: dict[str, int] = {
    "representation_size": 256,
    "rpn_pre_nms_top_n_train": 1000,
    "rpn_post_nms_top_n_train": 500,
    "rpn_pre_nms_top_n_test": 500,
    "rpn_post_nms_top_n_test": 200,
    "rpn_batch_size_per_image": 128,
    "box_batch_size_per_image": 64,
    "box_detections_per_img": 50,
}


class ProjectedFeatures(nn.Module):
    """Wraps a feature extractor and maps every level to ``out_channels`` with a shared 1x1 conv."""

    def __init__(self, features: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.features = features
        self.proj = nn.Conv2d(int(features.out_channels), out_channels, kernel_size=1)
        self.out_channels = out_channels
        self.strides = tuple(features.strides)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        return OrderedDict((k, self.proj(v)) for k, v in self.features(x).items())


def default_anchor_sizes(strides: Sequence[int], anchor_scale: float) -> tuple[tuple[int, ...], ...]:
    """One size per pyramid level (``anchor_scale * stride``); a single level gets five octaves."""
    if len(strides) == 1:
        base = anchor_scale * strides[0]
        return (tuple(round(base * 2**i) for i in range(5)),)
    return tuple((round(anchor_scale * s),) for s in strides)


def build_detector(
    name: str = "hrnet_w18_small",
    head: str = "v2p",
    num_classes: int = 80,
    detector: str = "faster_rcnn",
    min_size: int = 800,
    max_size: int = 1333,
    pretrained: str | Path | None = None,
    anchor_scale: float = 8.0,
    pyramid_channels: int = 256,
    proj_channels: int | None = None,
    representation_size: int = 1024,
    score_threshold: float = 0.05,
    model_options: dict[str, Any] | None = None,
    **detector_kwargs: Any,
) -> nn.Module:
    """A torchvision detector over ``create_backbone(name, head)``.

    Faster R-CNN: an RPN on every level (anchor ``anchor_scale * stride``, ratios 0.5/1/2) and
    ``MultiScaleRoIAlign`` over the finest four levels (FPN practice; the single level for v1/v2).
    FCOS: one point per location, anchor size = stride (FCOS's scale ranges derive from it).
    ``representation_size`` is the width of the two-FC box head (1024 in torchvision; smaller is
    much cheaper on a CPU). ``pyramid_channels`` is the width of the V2p levels (256 in the paper;
    the RPN and box heads scale with it). ``proj_channels`` adds a 1x1 conv to that width; FCOS
    needs a multiple of 32 (GroupNorm) and gets 256 when the backbone width is not one.
    ``score_threshold`` drops weaker detections (``box_score_thresh`` / FCOS ``score_thresh``).
    ``detector_kwargs`` go to the torchvision constructor (see ``SMALL_IMAGE_SETTINGS`` for small
    images).
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; valid: {', '.join(DETECTORS)}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1 (object categories), got {num_classes}")
    features: nn.Module = create_backbone(
        name, head=head, pretrained=pretrained, pyramid_channels=pyramid_channels, **(model_options or {})
    )
    if proj_channels is None and detector == "fcos" and features.out_channels % 32:
        proj_channels = 256
    if proj_channels is not None and proj_channels != features.out_channels:
        features = ProjectedFeatures(features, proj_channels)
    strides = tuple(int(s) for s in features.strides)
    names = [str(i) for i in range(len(strides))]
    sizes = {"min_size": min_size, "max_size": max_size}
    if detector == "fcos":
        anchors = AnchorGenerator(tuple((s,) for s in strides), ((1.0,),) * len(strides))
        return FCOS(
            features, num_classes + 1, anchor_generator=anchors, score_thresh=score_threshold,
            **sizes, **detector_kwargs,
        )  # fmt: skip
    anchor_sizes = default_anchor_sizes(strides, anchor_scale)
    anchors = AnchorGenerator(anchor_sizes, ((0.5, 1.0, 2.0),) * len(anchor_sizes))
    roi_pool = MultiScaleRoIAlign(featmap_names=names[:4], output_size=7, sampling_ratio=2)
    box_head = TwoMLPHead(features.out_channels * 7 * 7, representation_size)
    return FasterRCNN(
        features,
        rpn_anchor_generator=anchors,
        box_roi_pool=roi_pool,
        box_head=box_head,
        box_predictor=FastRCNNPredictor(representation_size, num_classes + 1),
        box_score_thresh=score_threshold,
        **sizes,
        **detector_kwargs,
    )
