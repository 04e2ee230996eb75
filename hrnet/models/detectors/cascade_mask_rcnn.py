"""Cascade Mask R-CNN (Cai & Vasconcelos, 2019): :mod:`.cascade_rcnn`'s three box stages with a mask
branch on the last stage only (MMDetection's configs put one on every stage; :mod:`.htc` here does),
all torchvision's parts: the last stage's ``RoIHeads`` carries :mod:`.mask_rcnn`'s ``mask_parts()``
(RoIAlign 14x14, ``MaskRCNNHeads``, ``MaskRCNNPredictor`` to 28x28 per-class logits). In training
``maskrcnn_loss`` (28x28 targets cut from the instance masks) runs on the last stage's sampled
positives, as torchvision's Mask R-CNN does on its single stage, weight 1 (``loss_mask_s2``): the mask
branch is not repeated, so the cascade's 1/0.5/0.25 stage weights, which keep three box losses
comparable to one, do not apply. At test the branch predicts a mask for each final detection; the
transform pastes it into the image (``masks`` (N, 1, H, W) probabilities). Our own code:
:class:`MaskHead`, a wrapper that gives torchvision's ``MaskRCNNHeads`` the ``(x, previous)`` call
:class:`~.cascade_rcnn.CascadeRoIHeads` makes (:mod:`.htc` feeds ``previous``; here it is ignored),
and the mask steps of the stage loop in :mod:`.cascade_rcnn`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import Tensor, nn
from torchvision.models.detection.roi_heads import RoIHeads

from hrnet.models.detectors.cascade_rcnn import STAGE_WEIGHTS, CascadeRCNN, CascadeRoIHeads, build_cascade
from hrnet.models.detectors.mask_rcnn import MASK_CHANNELS, mask_parts

PROJECTION_MULTIPLE = 1
LAST_STAGE_MASK_WEIGHT = 1.0


class MaskHead(nn.Module):
    """torchvision's ``MaskRCNNHeads`` (``convs``) called as ``head(x, previous)``; ``previous`` (the
    previous stage's head features, HTC's mask information flow) is not used here."""

    def __init__(self, convs: nn.Module) -> None:
        super().__init__()
        self.convs = convs

    def forward(self, x: Tensor, previous: Tensor | None = None) -> Tensor:
        return self.convs(x)


class CascadeMaskRCNN(CascadeRCNN):
    """:class:`~.cascade_rcnn.CascadeRCNN` with a mask branch on its last stage."""

    produces_masks = True
    registry_name = "cascade_mask_rcnn"


def add_mask_branches(
    model: CascadeRCNN, features: nn.Module, num_classes: int, masked: tuple[int, ...],
    mask_weights: tuple[float, ...], mask_channels: int,
    make_head: Callable[[nn.Module, int], nn.Module] = lambda convs, i: MaskHead(convs),
    mask_flow: bool = False, interleaved: bool = False,
) -> CascadeRCNN:  # fmt: skip
    """Gives the cascade's stages ``masked`` their own mask head (``make_head(convs, stage)``) and
    predictor from ``mask_parts()``, all reading one 14x14 RoIAlign, and rebuilds its
    ``CascadeRoIHeads`` with the mask options (see its docstring)."""
    cascade = model.roi_heads
    stages: list[RoIHeads] = list(cascade.stages)
    pool = None
    for i in masked:
        parts = mask_parts(features, num_classes + 1, mask_channels)
        pool = pool or parts["mask_roi_pool"]
        stages[i].mask_roi_pool = pool
        stages[i].mask_head = make_head(parts["mask_head"], i)
        stages[i].mask_predictor = parts["mask_predictor"]
    model.roi_heads = CascadeRoIHeads(
        stages, tuple(cascade.stage_weights), pool, mask_weights, mask_flow, interleaved
    )
    return model


def build(features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any) -> nn.Module:
    """``kwargs``: ``mask_channels`` (256) and torchvision's ``FasterRCNN`` options."""
    mask_channels = int(kwargs.pop("mask_channels", MASK_CHANNELS))
    model = build_cascade(CascadeMaskRCNN, features, num_classes, settings, **kwargs)
    last = len(STAGE_WEIGHTS) - 1
    weights = tuple(LAST_STAGE_MASK_WEIGHT if i == last else 0.0 for i in range(len(STAGE_WEIGHTS)))
    return add_mask_branches(model, features, num_classes, (last,), weights, mask_channels)
