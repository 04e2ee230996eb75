"""Mask R-CNN (torchvision's) on the feature pyramid: :mod:`.faster_rcnn`'s RPN, RoIAlign and box
head, plus torchvision's mask branch: RoIAlign to 14x14 over the same levels, ``MaskRCNNHeads``
(four 3x3 convs of ``mask_channels``, each with BatchNorm: torchvision's ``norm_layer`` option),
``MaskRCNNPredictor`` (a 2x deconvolution to the 28x28 per-class mask logits that ``maskrcnn_loss``
trains against 28x28 targets cut from the instance masks). Ours is only the choice of BatchNorm:
unnormalised, the mask loss starts at 6-8 on V2p (ln 2 expected) and the embedded default reached
bbox AP 0.320 / segm AP 0.237; normalised 0.451 / 0.363 (same seed, 16 epochs).

Every mask framework (this one, ``cascade_mask_rcnn``, ``htc``) sets ``produces_masks = True`` on its
model class; its training targets carry ``masks`` (N, H, W, uint8) beside ``boxes`` and ``labels``, and
in eval each detection dict carries ``masks`` (N, 1, H, W) probabilities in the input image's size,
as torchvision's ``MaskRCNN`` returns them."""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import MultiScaleRoIAlign

from hrnet.models.detectors.faster_rcnn import rcnn_parts

PROJECTION_MULTIPLE = 1
MASK_CHANNELS = 256  # torchvision's and the paper's mask head width


def mask_parts(features: nn.Module, num_classes: int, mask_channels: int = MASK_CHANNELS) -> dict[str, Any]:
    """The mask branch over ``features``' finest four levels: RoIAlign 14x14, four convs, a 2x
    deconvolution to 28x28 logits per class (``num_classes`` with background)."""
    names = [str(i) for i in range(len(features.strides))]
    return {
        "mask_roi_pool": MultiScaleRoIAlign(featmap_names=names[:4], output_size=14, sampling_ratio=2),
        "mask_head": MaskRCNNHeads(
            int(features.out_channels), (mask_channels,) * 4, 1, norm_layer=nn.BatchNorm2d
        ),
        "mask_predictor": MaskRCNNPredictor(mask_channels, mask_channels, num_classes),
    }


class HRNetMaskRCNN(MaskRCNN):
    """torchvision's ``MaskRCNN``; the class attributes tell the task code it returns masks."""

    produces_masks = True
    registry_name = "mask_rcnn"


def build(features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any) -> nn.Module:
    """``kwargs``: ``mask_channels`` (256) and torchvision's ``MaskRCNN`` options."""
    mask_channels = int(kwargs.pop("mask_channels", MASK_CHANNELS))
    return HRNetMaskRCNN(
        features, **rcnn_parts(features, settings), **mask_parts(features, num_classes + 1, mask_channels),
        box_predictor=FastRCNNPredictor(settings["representation_size"], num_classes + 1),
        box_score_thresh=settings["score_threshold"], min_size=settings["min_size"],
        max_size=settings["max_size"], **kwargs,
    )  # fmt: skip
