"""Cascade R-CNN (Cai & Vasconcelos, 2018) assembled from torchvision's parts: ``FasterRCNN``
(GeneralizedRCNN + RPN + transform, as :mod:`.faster_rcnn` builds it) whose ``roi_heads`` is a
:class:`CascadeRoIHeads`, three torchvision ``RoIHeads`` in sequence sharing one
``MultiScaleRoIAlign``. Stage ``i`` matches proposals at IoU ``IOU_THRESHOLDS[i]`` (0.5/0.6/0.7),
encodes deltas with ``BoxCoder(BOX_WEIGHTS[i])`` (1/std: stds 0.1/0.1/0.2/0.2, halved, thirded) and
weighs its losses by ``STAGE_WEIGHTS[i]`` (1/0.5/0.25), as MMDetection's cascade_rcnn configs do.
Regression is class-agnostic (4 deltas per RoI). In training every stage re-samples (with the
ground-truth boxes added) from the previous stage's refined boxes, detached; at test time each
stage scores the previous stage's boxes, the class logits are averaged over the stages (MMDetection's
``ms_scores``) and the boxes are the last stage's. Our own code: the stage loop, the class-agnostic
predictor and its loss (torchvision's ``fastrcnn_loss`` is per class). Unlike MMDetection, the
ground-truth boxes a stage added to its samples are refined and passed on with the rest (the next
stage adds them again): torchvision's sampler does not say which samples they were."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.ops import boxes as box_ops

from hrnet.models.detectors.faster_rcnn import rcnn_parts

PROJECTION_MULTIPLE = 1
IOU_THRESHOLDS = (0.5, 0.6, 0.7)
STAGE_WEIGHTS = (1.0, 0.5, 0.25)
BOX_STDS = ((0.1, 0.1, 0.2, 0.2), (0.05, 0.05, 0.1, 0.1), (0.033, 0.033, 0.067, 0.067))
BOX_WEIGHTS = ((10.0, 10.0, 5.0, 5.0), (20.0, 20.0, 10.0, 10.0), (30.0, 30.0, 15.0, 15.0))  # 1/std


class AgnosticPredictor(nn.Module):
    """Class scores (``num_classes`` with background) and one set of 4 box deltas per RoI."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x.flatten(start_dim=1)
        return self.cls_score(x), self.bbox_pred(x)


def agnostic_loss(
    logits: Tensor, deltas: Tensor, labels: list[Tensor], targets: list[Tensor]
) -> tuple[Tensor, Tensor]:
    """torchvision's Fast R-CNN loss (cross-entropy; smooth L1, beta 1/9, over the sampled RoIs'
    count) with one box per RoI instead of one per class."""
    label = torch.cat(labels, dim=0)
    target = torch.cat(targets, dim=0)
    classification = F.cross_entropy(logits, label)
    positive = torch.where(label > 0)[0]
    box = F.smooth_l1_loss(deltas[positive], target[positive], beta=1 / 9, reduction="sum")
    return classification, box / label.numel()


class CascadeRoIHeads(nn.Module):
    """Three ``RoIHeads`` stages (see the module docstring); same call contract as ``RoIHeads``."""

    __jit_unused_properties__ = ["score_thresh"]

    def __init__(self, stages: list[RoIHeads], stage_weights: tuple[float, ...]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.stage_weights: list[float] = [float(w) for w in stage_weights]

    @property
    def score_thresh(self) -> float:
        return self.stages[-1].score_thresh

    @score_thresh.setter
    def score_thresh(self, value: float) -> None:
        self.stages[-1].score_thresh = value  # the last stage's postprocessing filters the detections

    def forward(
        self,
        features: dict[str, Tensor],
        proposals: list[Tensor],
        image_shapes: list[tuple[int, int]],
        targets: list[dict[str, Tensor]] | None = None,
    ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        losses: dict[str, Tensor] = {}
        logits_sum = torch.zeros(0)
        deltas = torch.zeros(0)
        boxes = proposals
        last = len(self.stages) - 1
        result: list[dict[str, Tensor]] = []
        for i, stage in enumerate(self.stages):
            labels: list[Tensor] = []
            regression: list[Tensor] = []
            if self.training:  # re-sampled at this stage's IoU threshold, ground truth added
                boxes, _, labels, regression = stage.select_training_samples(boxes, targets)
            pooled = stage.box_roi_pool(features, boxes, image_shapes)
            logits, deltas = stage.box_predictor(stage.box_head(pooled))
            if self.training:
                classification, box = agnostic_loss(logits, deltas, labels, regression)
                losses[f"loss_classifier_s{i}"] = classification * self.stage_weights[i]
                losses[f"loss_box_reg_s{i}"] = box * self.stage_weights[i]
            else:  # in training the stages' samples differ: no mean
                logits_sum = logits if i == 0 else logits_sum + logits
            if i < last:  # the next stage's input: this stage's refined boxes, detached
                refined = stage.box_coder.decode(deltas.detach(), boxes).reshape(-1, 4)
                counts = [len(b) for b in boxes]
                boxes = [
                    box_ops.clip_boxes_to_image(b, s) for b, s in zip(refined.split(counts), image_shapes)
                ]
            elif not self.training:  # scores: the stages' mean logits; boxes: the last stage's
                mean_logits = logits_sum / len(self.stages)
                per_class = deltas.repeat(1, mean_logits.shape[-1])
                out = stage.postprocess_detections(mean_logits, per_class, boxes, image_shapes)
                for b, s, lab in zip(out[0], out[1], out[2]):
                    result.append({"boxes": b, "scores": s, "labels": lab})
        return result, losses


class CascadeRCNN(FasterRCNN):
    """torchvision's ``FasterRCNN`` with :class:`CascadeRoIHeads` (packaged as TorchScript only)."""

    package_formats = ("torch_export",)  # no ONNX graphs (package.format=onnx is refused)
    registry_name = "cascade_rcnn"


def build(features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any) -> nn.Module:
    size = settings["representation_size"]
    model = CascadeRCNN(
        features, **rcnn_parts(features, settings),
        box_predictor=AgnosticPredictor(size, num_classes + 1), box_score_thresh=settings["score_threshold"],
        min_size=settings["min_size"], max_size=settings["max_size"], **kwargs,
    )  # fmt: skip
    first = model.roi_heads  # the first stage: FasterRCNN's own, with its box_* options
    stages = [first]
    for iou, weights in zip(IOU_THRESHOLDS[1:], BOX_WEIGHTS[1:]):
        stages.append(
            RoIHeads(
                first.box_roi_pool,  # one RoIAlign for every stage
                TwoMLPHead(features.out_channels * 7 * 7, size),
                AgnosticPredictor(size, num_classes + 1),
                iou,
                iou,
                first.fg_bg_sampler.batch_size_per_image,
                first.fg_bg_sampler.positive_fraction,
                weights,
                first.score_thresh,
                first.nms_thresh,
                first.detections_per_img,
            )  # fmt: skip
        )
    first.proposal_matcher = type(first.proposal_matcher)(IOU_THRESHOLDS[0], IOU_THRESHOLDS[0], False)
    first.box_coder = type(first.box_coder)(BOX_WEIGHTS[0])
    model.roi_heads = CascadeRoIHeads(stages, STAGE_WEIGHTS)
    return model
