"""Object detection: torchvision Faster R-CNN / FCOS assembled over an HRNet feature extractor.

``num_classes`` everywhere counts the object categories only (labels ``1..C``); the background
slot torchvision expects is added internally.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor, nn
from torchvision.models.detection import FCOS, FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.ops import MultiScaleRoIAlign

from hrnet.evaluation.coco_boxes import BOX_STAT_NAMES, evaluate_boxes, foreground, to_coco_detections
from hrnet.models import create_backbone
from hrnet.tasks.optim import build_optimizer, lambda_scheduler, warmup_lambda

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


Prediction = tuple[int, np.ndarray, np.ndarray, np.ndarray]  # image_id, boxes xyxy, scores, labels


def gather_predictions(local: list[Prediction]) -> list[Prediction]:
    """All ranks' predictions (every rank gets the full list), one entry per image id."""
    gathered: list[list[Prediction]] = [local]
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        world = torch.distributed.get_world_size()
        if world > 1:
            gathered = [[] for _ in range(world)]
            torch.distributed.all_gather_object(gathered, local)
    unique: dict[int, Prediction] = {}
    for part in gathered:
        for pred in part:  # the distributed sampler pads with repeated images: keep the first copy
            unique.setdefault(int(pred[0]), pred)
    return [unique[k] for k in sorted(unique)]


class DetectionModule(pl.LightningModule):
    """Trains a :func:`build_detector` model; validation logs COCO bbox stats (``val/AP``, ...).

    Batches are ``(list[image (3,H,W) in [0,1]], list[target])`` with targets holding ``boxes``
    (xyxy), ``labels`` (1..C) and ``image_id``. ``val_ann_file`` / ``label_to_category`` fall back to
    the datamodule's attributes of the same names.
    """

    def __init__(
        self,
        model_name: str = "hrnet_w18_small",
        head: str = "v2p",
        num_classes: int = 80,
        detector: str = "faster_rcnn",
        min_size: int = 800,
        max_size: int = 1333,
        pretrained: str | None = None,
        anchor_scale: float = 8.0,
        pyramid_channels: int = 256,
        score_threshold: float = 0.05,
        detector_kwargs: dict[str, Any] | None = None,
        model_options: dict[str, Any] | None = None,
        val_ann_file: str | None = None,
        label_to_category: Mapping[int, int] | None = None,
        optimizer: str = "sgd",
        lr: float = 0.02,
        momentum: float = 0.9,
        weight_decay: float = 1e-4,
        warmup_steps: int = 500,
        warmup_factor: float = 0.001,
        schedule: str = "step",
        lr_steps: Sequence[float] = (0.67, 0.89),
        lr_factor: float = 0.1,
    ) -> None:
        super().__init__()
        # the trained weights are all in the checkpoint: loading it never reads `pretrained` again
        self.save_hyperparameters(ignore=["pretrained"])
        self.model = build_detector(
            model_name, head, num_classes, detector, min_size, max_size, pretrained, anchor_scale,
            pyramid_channels=pyramid_channels, score_threshold=score_threshold, model_options=model_options,
            **(detector_kwargs or {}),
        )  # fmt: skip
        self._predictions: list[Prediction] = []

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        return self.model(images)

    def set_score_threshold(self, threshold: float) -> None:
        """The test-time score threshold (FCOS ``score_thresh``, Faster R-CNN ``box_score_thresh``)."""
        if isinstance(self.model, FCOS):
            self.model.score_thresh = threshold
        else:
            self.model.roi_heads.score_thresh = threshold

    def training_step(self, batch: tuple[list[Tensor], list[dict]], batch_idx: int) -> Tensor:
        images, targets = batch
        targets = [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets]
        losses = self.model(images, targets)
        loss = sum(losses.values())
        n = len(images)
        for key, value in losses.items():
            self.log(f"train/{key}", value, on_step=True, on_epoch=False, batch_size=n)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def on_validation_epoch_start(self) -> None:
        self._predictions = []

    def validation_step(self, batch: tuple[list[Tensor], list[dict]], batch_idx: int) -> None:
        images, targets = batch
        for output, target in zip(map(foreground, self.model(images)), targets):
            self._predictions.append(
                (
                    int(target["image_id"]),
                    output["boxes"].detach().cpu().numpy(),
                    output["scores"].detach().cpu().numpy(),
                    output["labels"].detach().cpu().numpy(),
                )
            )

    def _eval_source(self, key: str) -> Any:
        value = self.hparams.get(key)
        if value is None and self._trainer is not None:
            value = getattr(self.trainer.datamodule, key, None)
        if value is None:
            raise RuntimeError(f"DetectionModule needs {key!r} (argument or datamodule attribute) to score")
        return value

    def on_validation_epoch_end(self) -> None:
        predictions = gather_predictions(self._predictions)
        self._predictions = []
        mapping = {int(k): int(v) for k, v in self._eval_source("label_to_category").items()}
        image_ids = [p[0] for p in predictions]
        results = to_coco_detections(
            image_ids, [p[1] for p in predictions], [p[2] for p in predictions],
            [p[3] for p in predictions], mapping,
        )  # fmt: skip
        stats = evaluate_boxes(self._eval_source("val_ann_file"), results, image_ids=image_ids)
        for name in BOX_STAT_NAMES:  # identical on every rank (all ranks score the gathered list)
            self.log(f"val/{name}", stats[name], prog_bar=name == "AP", sync_dist=False)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = build_optimizer(hp.optimizer, params, hp.lr, hp.weight_decay, hp.momentum)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        factor = warmup_lambda(
            total, hp.warmup_steps, hp.warmup_factor, hp.schedule, hp.lr_steps, hp.lr_factor
        )
        return lambda_scheduler(optimizer, factor, interval="step")
