"""Object detection: a registered detector (Faster R-CNN, FCOS, Cascade R-CNN, CenterNet) assembled
over an HRNet feature extractor.

``num_classes`` everywhere counts the object categories only (labels ``1..C``); the background
slot torchvision expects is added internally.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytorch_lightning as pl
from torch import Tensor

from hrnet.evaluation.coco_boxes import BOX_STAT_NAMES, foreground
from hrnet.evaluation.coco_segm import SEGM_STAT_NAMES
from hrnet.evaluation.distributed import gather_first_copies
from hrnet.evaluation.evaluators import DetectionEvaluator
from hrnet.models.detection import build_detector
from hrnet.tasks.detection.config import DetectionConfig, DetectionTestConfig
from hrnet.tasks.optim import build_optimizer, lambda_scheduler, warmup_lambda

Prediction = tuple[int, np.ndarray, np.ndarray, np.ndarray]  # image_id, boxes xyxy, scores, labels


def gather_predictions(local: list[Prediction]) -> list[Prediction]:
    """All ranks' predictions (every rank gets the full list), one entry per image id."""
    return gather_first_copies(local, to_all=True) or []


class DetectionModule(pl.LightningModule):
    """Trains a :func:`build_detector` model; validation logs COCO bbox stats (``val/AP``, ...) and, for
    a mask framework (its model class sets ``produces_masks``), COCO segm stats (``val/segm_AP``, ...).

    Batches are ``(list[image (3,H,W) in [0,1]], list[target])`` with targets holding ``boxes``
    (xyxy), ``labels`` (1..C), ``image_id`` and, for a mask framework, ``masks`` (N,H,W uint8).
    ``val_ann_file`` / ``label_to_category`` fall back to the datamodule's attributes of the same names.
    """

    def __init__(
        self,
        model_name: str = "hrnet_w18_small",
        head: str = "v2p",
        num_classes: int = 80,
        detector: str = DetectionConfig.detector,
        min_size: int = DetectionConfig.min_size,
        max_size: int = DetectionConfig.max_size,
        pretrained: str | None = None,
        anchor_scale: float = DetectionConfig.anchor_scale,
        pyramid_channels: int = 256,
        score_threshold: float = 0.05,
        detector_kwargs: dict[str, Any] | None = None,
        model_options: dict[str, Any] | None = None,
        val_ann_file: str | None = None,
        label_to_category: Mapping[int, int] | None = None,
        optimizer: str = DetectionConfig.optimizer,
        lr: float = DetectionConfig.lr,
        momentum: float = DetectionConfig.momentum,
        weight_decay: float = DetectionConfig.weight_decay,
        warmup_steps: int = DetectionConfig.warmup_steps,
        warmup_factor: float = 0.001,
        schedule: str = DetectionConfig.schedule,
        lr_steps: Sequence[float] = DetectionConfig.lr_steps,
        lr_factor: float = DetectionConfig.lr_factor,
    ) -> None:
        super().__init__()
        # the trained weights are all in the checkpoint: loading it never reads `pretrained` again
        self.save_hyperparameters(ignore=["pretrained"])
        self.model = build_detector(
            model_name, head, num_classes, detector, min_size, max_size, pretrained, anchor_scale,
            pyramid_channels=pyramid_channels, score_threshold=score_threshold, model_options=model_options,
            **(detector_kwargs or {}),
        )  # fmt: skip
        self.evaluator: DetectionEvaluator | None = None  # built at the first validation

    @property
    def produces_masks(self) -> bool:
        """Whether the detector is a mask framework (trains on and returns instance masks)."""
        return bool(getattr(self.model, "produces_masks", False))

    def forward(self, images: list[Tensor]) -> list[dict[str, Tensor]]:
        return self.model(images)

    def configure_test(self, test: DetectionTestConfig) -> None:
        """The test-time settings (``evaluate.detection``) that validation, the evaluate stage and
        packages use: the score threshold (the R-CNNs' ``roi_heads.score_thresh``, a one-stage
        detector's ``score_thresh``: FCOS, CenterNet) and, when set, the detections kept per image."""
        if hasattr(self.model, "roi_heads"):
            self.model.roi_heads.score_thresh = test.score_threshold
        elif hasattr(self.model, "score_thresh"):  # else an exported detector, which keeps its own
            self.model.score_thresh = test.score_threshold
        if test.max_per_image is not None:
            self._keep_per_image(test.max_per_image)

    def _keep_per_image(self, count: int) -> None:
        """``evaluate.detection.max_per_image`` where this framework keeps its count."""
        heads = getattr(self.model, "roi_heads", None)
        for owner, name in (
            (heads, "detections_per_img"),
            (self.model, "detections_per_img"),
            (self.model, "topk"),
        ):
            if owner is not None and hasattr(owner, name):  # R-CNNs; FCOS; CenterNet
                setattr(owner, name, count)
                return

    def training_step(self, batch: tuple[list[Tensor], list[dict]], batch_idx: int) -> Tensor:
        images, targets = batch
        keys = ("boxes", "labels", "masks") if self.produces_masks else ("boxes", "labels")
        if self.produces_masks and any("masks" not in t for t in targets):
            raise ValueError(
                f"detector {self.hparams.detector!r} trains on instance masks: the targets have none "
                "(expected DetectionDataModule(with_masks=True))"
            )
        targets = [{key: t[key] for key in keys} for t in targets]
        losses = self.model(images, targets)
        loss = sum(losses.values())
        n = len(images)
        for key, value in losses.items():
            self.log(f"train/{key}", value, on_step=True, on_epoch=False, batch_size=n)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=n)
        return loss

    def on_validation_epoch_start(self) -> None:
        if self.evaluator is None:
            self.evaluator = DetectionEvaluator(
                self._eval_source("val_ann_file"), self._eval_source("label_to_category")
            )
        self.evaluator.reset()

    def validation_step(
        self, batch: tuple[list[Tensor], list[dict]], batch_idx: int
    ) -> list[dict[str, Tensor]]:
        """The detections of the batch's images, background left out."""
        images, targets = batch
        outputs = [foreground(output) for output in self.model(images)]
        assert self.evaluator is not None
        self.evaluator.update([int(t["image_id"]) for t in targets], outputs)
        return outputs

    def _eval_source(self, key: str) -> Any:
        value = self.hparams.get(key)
        if value is None and self._trainer is not None:
            value = getattr(self.trainer.datamodule, key, None)
        if value is None:
            raise RuntimeError(f"DetectionModule needs {key!r} (argument or datamodule attribute) to score")
        return value

    def on_validation_epoch_end(self) -> None:
        assert self.evaluator is not None
        stats = self.evaluator.compute()
        names = BOX_STAT_NAMES + (SEGM_STAT_NAMES if self.produces_masks else ())
        for name in names:  # identical on every rank (rank 0 scored, then broadcast)
            self.log(f"val/{name}", stats[name], prog_bar=name in ("AP", "segm_AP"), sync_dist=False)

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        params = [p for p in self.model.parameters() if p.requires_grad]
        optimizer = build_optimizer(hp.optimizer, params, hp.lr, hp.weight_decay, hp.momentum)
        total = max(int(self.trainer.estimated_stepping_batches), 1)
        factor = warmup_lambda(
            total, hp.warmup_steps, hp.warmup_factor, hp.schedule, hp.lr_steps, hp.lr_factor
        )
        return lambda_scheduler(optimizer, factor, interval="step")
