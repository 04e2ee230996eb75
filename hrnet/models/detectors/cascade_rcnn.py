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
stage adds them again): torchvision's sampler does not say which samples they were. The stages
may carry mask branches (:class:`CascadeRoIHeads`): :mod:`.cascade_mask_rcnn` and :mod:`.htc`."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.faster_rcnn import TwoMLPHead
from torchvision.models.detection.roi_heads import RoIHeads, maskrcnn_inference, maskrcnn_loss
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
    """Three ``RoIHeads`` stages (see the module docstring); same call contract as ``RoIHeads``.

    Mask branches (:mod:`.cascade_mask_rcnn`, :mod:`.htc`): a stage whose ``RoIHeads`` carries
    torchvision's ``mask_head``/``mask_predictor`` trains a mask loss (``loss_mask_s<i>``, weighed by
    ``mask_weights[i]``) and, at test, predicts masks for the final detections; with several, the
    masks are the mean of their probabilities. ``mask_head`` is called as ``head(x, previous)``:
    with ``mask_flow`` each stage's head also reads the previous stage's head features (HTC).
    ``interleaved``: a stage's mask branch trains on its own refined boxes (matched again at its IoU
    threshold) rather than on the samples its box branch read.
    """

    __jit_unused_properties__ = ["score_thresh", "detections_per_img"]

    def __init__(
        self,
        stages: list[RoIHeads],
        stage_weights: tuple[float, ...],
        mask_roi_pool: nn.Module | None = None,
        mask_weights: tuple[float, ...] = (),
        mask_flow: bool = False,
        interleaved: bool = False,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.stage_weights: list[float] = [float(w) for w in stage_weights]
        self.mask_roi_pool = mask_roi_pool  # one RoIAlign for every mask head
        self.mask_weights: list[float] = [float(w) for w in mask_weights] or [0.0] * len(stages)
        self.mask_flow = mask_flow
        self.interleaved = interleaved

    @property
    def score_thresh(self) -> float:
        return self.stages[-1].score_thresh

    @score_thresh.setter
    def score_thresh(self, value: float) -> None:
        self.stages[-1].score_thresh = value  # the last stage's postprocessing filters the detections

    @property
    def detections_per_img(self) -> int:
        return self.stages[-1].detections_per_img

    @detections_per_img.setter
    def detections_per_img(self, value: int) -> None:
        self.stages[-1].detections_per_img = value  # and keeps the best of them

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
            matched: list[Tensor] = []
            if self.training:  # re-sampled at this stage's IoU threshold, ground truth added
                boxes, matched, labels, regression = stage.select_training_samples(boxes, targets)
            pooled = stage.box_roi_pool(features, boxes, image_shapes)
            logits, deltas = stage.box_predictor(stage.box_head(pooled))
            if self.training:
                classification, box = agnostic_loss(logits, deltas, labels, regression)
                losses[f"loss_classifier_s{i}"] = classification * self.stage_weights[i]
                losses[f"loss_box_reg_s{i}"] = box * self.stage_weights[i]
            else:  # in training the stages' samples differ: no mean
                logits_sum = logits if i == 0 else logits_sum + logits
            refined = boxes
            if i < last or (self.training and self.interleaved):  # detached, as the next input
                decoded = stage.box_coder.decode(deltas.detach(), boxes).reshape(-1, 4)
                counts = [len(b) for b in boxes]
                refined = [
                    box_ops.clip_boxes_to_image(b, s) for b, s in zip(decoded.split(counts), image_shapes)
                ]
            if self.training and stage.has_mask():
                if targets is None:
                    raise ValueError("training a mask branch needs targets")
                if self.interleaved:  # HTC: this stage's refined boxes, matched at its threshold
                    gt = [t["boxes"] for t in targets]
                    matched, labels = stage.assign_targets_to_proposals(
                        refined, gt, [t["labels"] for t in targets]
                    )
                    samples = refined
                else:
                    samples = boxes
                losses[f"loss_mask_s{i}"] = self.mask_loss(
                    features, samples, matched, labels, targets, image_shapes, i
                ) * self.mask_weights[i]  # fmt: skip
            boxes = refined
            if i == last and not self.training:  # scores: the stages' mean logits; boxes: the last's
                mean_logits = logits_sum / len(self.stages)
                per_class = deltas.repeat(1, mean_logits.shape[-1])
                out = stage.postprocess_detections(mean_logits, per_class, boxes, image_shapes)
                for b, s, lab in zip(out[0], out[1], out[2]):
                    result.append({"boxes": b, "scores": s, "labels": lab})
                self.add_masks(features, result, image_shapes)
        return result, losses

    def mask_logits(
        self, features: dict[str, Tensor], rois: list[Tensor], image_shapes: list[tuple[int, int]],
        upto: int, every: bool,
    ) -> list[Tensor]:  # fmt: skip
        """Mask logits on ``rois`` of stage ``upto``'s mask branch, or (``every``) of every mask
        branch up to it (see :meth:`pooled_mask_logits`)."""
        pool = self.mask_roi_pool
        if pool is None:
            return []
        return self.pooled_mask_logits(pool(features, rois, image_shapes), upto, every)

    def pooled_mask_logits(self, pooled: Tensor, upto: int, every: bool) -> list[Tensor]:
        """:meth:`mask_logits` on RoI features already pooled; with ``mask_flow`` the heads before
        ``upto`` run first to feed it. (The mask ONNX graph is this call, ``every`` up to the last.)"""
        out: list[Tensor] = []
        previous: Tensor | None = None
        for i, stage in enumerate(self.stages):
            head = stage.mask_head
            predictor = stage.mask_predictor
            if (
                head is not None
                and predictor is not None
                and i <= upto
                and (every or self.mask_flow or i == upto)
            ):
                previous = head(pooled, previous if self.mask_flow else None)
                if every or i == upto:
                    out.append(predictor(previous))
        return out

    def mask_loss(
        self, features: dict[str, Tensor], samples: list[Tensor], matched: list[Tensor],
        labels: list[Tensor], targets: list[dict[str, Tensor]], image_shapes: list[tuple[int, int]],
        stage: int,
    ) -> Tensor:  # fmt: skip
        """torchvision's ``maskrcnn_loss`` (28x28 targets) of stage ``stage`` on its positive samples."""
        positive = [torch.where(lab > 0)[0] for lab in labels]
        rois = [b[p] for b, p in zip(samples, positive)]
        logits = self.mask_logits(features, rois, image_shapes, stage, False)[-1]
        indices = [m[p] for m, p in zip(matched, positive)]
        gt_masks = [t["masks"] for t in targets]
        return maskrcnn_loss(logits, rois, gt_masks, [t["labels"] for t in targets], indices)

    def add_masks(
        self,
        features: dict[str, Tensor],
        result: list[dict[str, Tensor]],
        image_shapes: list[tuple[int, int]],
    ) -> None:
        """``masks`` (N, 1, 28, 28) for each image's detections: the mask branches' mean probability
        of the detected class (the transform pastes them into the image)."""
        if self.mask_roi_pool is None:
            return
        boxes = [r["boxes"] for r in result]
        labels = [r["labels"] for r in result]
        stages = self.mask_logits(features, boxes, image_shapes, len(self.stages) - 1, True)
        total: list[Tensor] = []
        for logits in stages:
            probabilities = maskrcnn_inference(logits, labels)
            total = probabilities if not total else [a + b for a, b in zip(total, probabilities)]
        for r, masks in zip(result, total):
            r["masks"] = masks / len(stages)


class CascadeRCNN(FasterRCNN):
    """torchvision's ``FasterRCNN`` with :class:`CascadeRoIHeads`."""

    registry_name = "cascade_rcnn"


def build_cascade(
    cls: type[FasterRCNN], features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any
) -> FasterRCNN:
    """A ``cls`` (a ``FasterRCNN``) whose ``roi_heads`` is a box-only :class:`CascadeRoIHeads`."""
    size = settings["representation_size"]
    model = cls(
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


def build(features: nn.Module, num_classes: int, settings: dict[str, Any], **kwargs: Any) -> nn.Module:
    return build_cascade(CascadeRCNN, features, num_classes, settings, **kwargs)
