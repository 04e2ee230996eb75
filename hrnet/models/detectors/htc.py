"""Hybrid Task Cascade (Chen et al., 2019) without its semantic branch: :mod:`.cascade_rcnn`'s three
box stages, each followed by a mask branch (interleaved execution), and the mask information flow.

- Interleaved: in training stage ``t``'s mask branch reads the boxes stage ``t``'s box branch has just
  refined (detached), matched to the ground truth again at the stage's IoU threshold (0.5/0.6/0.7);
  its positives train it. Unlike MMDetection, the refined boxes are not sampled again (all positives
  train the mask; no ground-truth boxes added a second time).
- Mask information flow: stage ``t``'s mask head adds to its RoI features the features of stage
  ``t-1``'s mask head (after its four convs) through a 1x1 conv + ReLU, as MMDetection's
  ``HTCMaskHead`` (``conv_res``); those are computed on stage ``t``'s RoIs by running the heads
  ``0..t-1`` in a chain on them (stage ``t``'s loss trains them too, as in MMDetection).
- Losses: ``loss_mask_s<t>`` (torchvision's ``maskrcnn_loss``, 28x28 targets) weighed 1/0.5/0.25 as the
  box stages. At test every stage's mask branch (with the flow) predicts on the final detections and
  the masks are the mean of the three stages' probabilities, as HTC/MMDetection do.
- The semantic segmentation branch (trained on COCO-stuff, not available here) is off and not
  implemented.

torchvision's parts: GeneralizedRCNN, RPN, RoIAlign, box coder, ``MaskRCNNHeads``/``MaskRCNNPredictor``
(:mod:`.mask_rcnn`'s ``mask_parts()``), ``maskrcnn_loss``/``maskrcnn_inference`` and the transform that
pastes the masks into the image. Ours: the stage loop (:class:`~.cascade_rcnn.CascadeRoIHeads`) and
the flow (:class:`FlowMaskHead`). ``mask_flow=False`` builds the variant without the flow."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from hrnet.models.detectors.cascade_mask_rcnn import MaskHead, add_mask_branches
from hrnet.models.detectors.cascade_rcnn import STAGE_WEIGHTS, CascadeRCNN, build_cascade
from hrnet.models.detectors.mask_rcnn import MASK_CHANNELS

PROJECTION_MULTIPLE = 1


class FlowMaskHead(MaskHead):
    """torchvision's ``MaskRCNNHeads`` (``convs``) whose input RoI features get ``flow(previous)``
    added: a 1x1 conv + ReLU from the previous stage's head features (``None`` on the first stage)."""

    def __init__(self, convs: nn.Module, flow: nn.Module | None) -> None:
        super().__init__(convs)
        self.flow = flow

    def forward(self, x: Tensor, previous: Tensor | None = None) -> Tensor:
        if self.flow is not None and previous is not None:
            x = x + self.flow(previous)
        return self.convs(x)


class HybridTaskCascade(CascadeRCNN):
    """:class:`~.cascade_rcnn.CascadeRCNN` with HTC's interleaved mask branches and mask flow."""

    produces_masks = True
    registry_name = "htc"


def build(features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any) -> nn.Module:
    """``kwargs``: ``mask_channels`` (256), ``mask_flow`` (True) and torchvision's ``FasterRCNN``
    options."""
    mask_channels = int(kwargs.pop("mask_channels", MASK_CHANNELS))
    mask_flow = bool(kwargs.pop("mask_flow", True))
    width = int(features.out_channels)

    def make_head(convs: nn.Module, stage: int) -> nn.Module:
        flow = nn.Sequential(nn.Conv2d(mask_channels, width, 1), nn.ReLU()) if stage and mask_flow else None
        return FlowMaskHead(convs, flow)

    model = build_cascade(HybridTaskCascade, features, num_classes, settings, **kwargs)
    masked = tuple(range(len(STAGE_WEIGHTS)))
    return add_mask_branches(
        model, features, num_classes, masked, STAGE_WEIGHTS, mask_channels, make_head, mask_flow,
        interleaved=True,
    )  # fmt: skip
