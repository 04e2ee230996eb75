"""Semantic segmentation (the train ids of a class table, Cityscapes' by default) as a LightningModule."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from torch import nn

from hrnet.data.class_table import IGNORE_INDEX, ClassTable, cityscapes_table
from hrnet.evaluation.distributed import RunningMean
from hrnet.evaluation.evaluators import SegmentationEvaluator
from hrnet.evaluation.segmentation import model_align_corners, predict_multiscale
from hrnet.models import create_model
from hrnet.tasks.optim import build_optimizer, lambda_scheduler, poly_lambda
from hrnet.tasks.segmentation.config import SegmentationConfig, SegmentationTestConfig

# Per-class loss weights of the official HRNet Cityscapes recipe (train-id order).
CITYSCAPES_CLASS_WEIGHTS = (
    0.8373, 0.918, 0.866, 1.0345, 1.0166, 0.9969, 0.9754, 1.0489, 0.8786, 1.0023,
    0.9539, 0.9843, 1.1116, 0.9037, 1.0865, 1.0955, 1.0865, 1.1529, 1.0507,
)  # fmt: skip


class OhemCrossEntropy(nn.Module):
    """Cross-entropy over the hardest pixels (online hard example mining), as the official code.

    Pixels are ranked by the softmax probability of their true class; those below
    ``max(thresh, p_k)`` are kept, where ``p_k`` is the probability at 0-based position
    ``min_kept`` in ascending order, so about ``min_kept`` pixels (when available) contribute
    even when few are below ``thresh``. Ignored pixels never count.
    """

    def __init__(
        self,
        ignore_index: int = IGNORE_INDEX,
        thresh: float = 0.7,
        min_kept: int = 100_000,
        weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.ignore_index, self.thresh, self.min_kept = ignore_index, float(thresh), max(1, int(min_kept))
        self.register_buffer("weight", weight, persistent=False)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        losses = F.cross_entropy(logits, target, weight=self.weight, ignore_index=self.ignore_index,
                                 reduction="none").reshape(-1)  # fmt: skip
        valid = target.reshape(-1) != self.ignore_index
        if not bool(valid.any()):
            return logits.sum() * 0.0
        with torch.no_grad():
            safe = target.clamp(0, logits.shape[1] - 1).unsqueeze(1)
            prob = logits.softmax(1).gather(1, safe).reshape(-1)[valid]
            kth = prob.kthvalue(min(self.min_kept, prob.numel() - 1) + 1).values
            threshold = torch.clamp(kth, min=self.thresh)
            keep = prob < threshold
        kept = losses[valid][keep]
        return kept.mean() if kept.numel() else losses[valid].mean() * 0.0


# Per-class metrics go under ``val/class_iou/<slug>``: DVCLive's Lightning logger reads the first
# "_"-separated part of a name as a split when it ends with train/val/test (``val/iou/train`` made it
# raise), and "val/class" never does. Slugs keep names to [a-z0-9_] so they are also safe file names.
CLASS_METRIC_PREFIX = "val/class_iou"


def metric_slug(name: str) -> str:
    """``name`` lower-cased with every run of characters outside [a-z0-9] turned into one ``_``."""
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    if not slug:
        raise ValueError(f"class name {name!r} has no letter or digit to build a metric name from")
    return slug


def class_metric_names(class_names: Iterable[str], prefix: str = CLASS_METRIC_PREFIX) -> dict[str, str]:
    """``{class name: f"{prefix}/{slug}"}``; raises ValueError when two names share a slug."""
    names: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name in class_names:
        slug = metric_slug(name)
        if slug in owner and owner[slug] != name:
            raise ValueError(f"class names {owner[slug]!r} and {name!r} both give the metric name {slug!r}")
        owner[slug], names[name] = name, f"{prefix}/{slug}"
    return names


class SegmentationModule(pl.LightningModule):
    """HRNet + representation head + ``last_layer``; CE/OHEM loss, SGD with the poly schedule.

    Logits (at 1/4 resolution) are upsampled bilinearly to the label size for the loss and the
    metrics. Validation sums a confusion matrix over batches and ranks
    (:class:`~hrnet.evaluation.evaluators.SegmentationEvaluator`) and logs ``val/mIoU``,
    ``val/pixel_accuracy`` and ``val/class_iou/<slug>`` (:func:`class_metric_names`; classes
    present or predicted only); ``last_val_metrics`` keeps the full dictionary of
    :func:`~hrnet.evaluation.segmentation.iou_from_confusion`. Validation predicts with
    :meth:`configure_test`'s settings (the evaluate stage's) and logs ``val/loss``, the training
    criterion's; ``validation_step`` returns the predicted train ids (N, H, W) under ``"preds"``.
    """

    def __init__(
        self,
        model_name: str = "hrnet_w18_small",
        head: str = "v2",
        num_classes: int | None = None,
        pretrained: str | None = None,
        lr: float = SegmentationConfig.lr,
        momentum: float = SegmentationConfig.momentum,
        weight_decay: float = SegmentationConfig.weight_decay,
        nesterov: bool = False,
        poly_power: float = SegmentationConfig.poly_power,
        total_steps: int | None = None,
        loss: str = SegmentationConfig.loss,
        ohem_thresh: float = SegmentationConfig.ohem_thresh,
        ohem_min_kept: int = SegmentationConfig.ohem_min_kept,
        class_weights: str | Sequence[float] | None = SegmentationConfig.class_weights,
        ignore_index: int = IGNORE_INDEX,
        model_options: dict[str, Any] | None = None,
        class_table: dict[str, Any] | None = None,
    ) -> None:
        """``class_table`` (:meth:`ClassTable.to_dict`, kept in the checkpoint): the classes the
        network predicts (default Cityscapes'); ``num_classes`` defaults to its size."""
        super().__init__()
        # the trained weights are all in the checkpoint: loading it never reads `pretrained` again
        self.save_hyperparameters(ignore=["pretrained"])
        if loss not in ("ce", "ohem"):
            raise ValueError(f"loss must be 'ce' or 'ohem', got {loss!r}")
        self.class_table = ClassTable.from_dict(class_table) if class_table else cityscapes_table()
        if num_classes is None:
            num_classes = self.hparams.num_classes = self.class_table.num_classes
        names = self.class_table.names if num_classes == self.class_table.num_classes else None
        options = {"upsample_mode": "bilinear", **(model_options or {})}  # bilinear: official segmentation
        self.model = create_model(model_name, task="segmentation", head=head, num_outputs=num_classes,
                                  pretrained=pretrained, **options)  # fmt: skip
        weight = self._class_weights(class_weights, num_classes)
        if loss == "ohem":
            self.criterion: nn.Module = OhemCrossEntropy(ignore_index, ohem_thresh, ohem_min_kept, weight)
        else:
            self.criterion = nn.CrossEntropyLoss(weight=weight, ignore_index=ignore_index)
        self.evaluator = SegmentationEvaluator(num_classes, ignore_index, names)
        self.val_loss = RunningMean()
        self.test_time: dict[str, Any] = {}
        self.configure_test(SegmentationTestConfig())
        self.last_val_metrics: dict[str, Any] = {}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Resuming training refuses a checkpoint trained on another class table (its network's
        outputs would be read as other classes)."""
        saved = checkpoint.get("hyper_parameters", {}).get("class_table")
        trained = ClassTable.from_dict(saved) if saved else cityscapes_table()
        if trained != self.class_table:
            from hrnet.errors import DataError

            raise DataError(
                f"checkpoint trained on {trained.describe()} cannot go on with data of "
                f"{self.class_table.describe()} (expected the same class table)"
            )

    @property
    def val_confusion(self) -> torch.Tensor:
        """This rank's confusion matrix of the last validation (rows: ground truth)."""
        return self.evaluator.confusion

    def configure_test(self, test: SegmentationTestConfig, window: Sequence[int] | None = None) -> None:
        """The test-time settings (``evaluate.segmentation``) that validation and the evaluate stage
        use: :func:`~hrnet.evaluation.segmentation.predict_multiscale` over ``test.scales`` (and flips
        with ``test.flip``), on the whole image or, with ``test.mode`` sliding, on ``window`` (w, h)
        crops (the training crop)."""
        sliding = test.mode == "sliding"
        if sliding and window is None:
            raise ValueError("evaluate.segmentation.mode sliding needs the window size (the training crop)")
        self.test_time = {
            "scales": tuple(test.scales),
            "flip": test.flip,
            "crop_size": window if sliding else None,
            "flip_permutation": self.class_table.flip_permutation() if self.class_table.flip_pairs else None,
        }

    @staticmethod
    def _class_weights(spec: str | Sequence[float] | None, num_classes: int) -> torch.Tensor | None:
        if spec is None:
            return None
        if isinstance(spec, str):
            if spec != "cityscapes":
                raise ValueError(f"class_weights must be 'cityscapes', a list or None, got {spec!r}")
            spec = CITYSCAPES_CLASS_WEIGHTS
        if len(spec) != num_classes:
            raise ValueError(f"class_weights has {len(spec)} entries for {num_classes} classes")
        return torch.tensor([float(v) for v in spec], dtype=torch.float32)

    @property
    def align_corners(self) -> bool:
        """The model's setting, used by every bilinear resize of its logits (loss, metrics, evaluation)."""
        return model_align_corners(self.model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    def logits_at(self, images: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        """Logits upsampled (bilinear, with the model's ``align_corners``) to ``size`` = (H, W)."""
        logits = self(images)
        if tuple(logits.shape[-2:]) != tuple(size):
            logits = F.interpolate(
                logits, size=tuple(size), mode="bilinear", align_corners=self.align_corners
            )
        return logits

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        label = batch["label"].long()
        loss = self.criterion(self.logits_at(batch["image"], label.shape[-2:]), label)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=label.shape[0])
        return loss

    def on_validation_epoch_start(self) -> None:
        self.evaluator.reset()
        self.val_loss.reset()

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """The loss is the training criterion's; the prediction is the evaluate stage's
        (:func:`~hrnet.evaluation.segmentation.predict_multiscale` with :meth:`configure_test`'s
        settings), computed from the same forward pass when those are one whole-image scale."""
        images, label = batch["image"], batch["label"].long()
        raw = self(images)
        logits = F.interpolate(raw, size=label.shape[-2:], mode="bilinear", align_corners=self.align_corners)
        self.val_loss.update(self.criterion(logits, label).detach(), label.shape[0])
        test = self.test_time
        if test["scales"] == (1.0,) and not test["flip"] and test["crop_size"] is None:
            whole = F.interpolate(
                raw, size=images.shape[-2:], mode="bilinear", align_corners=self.align_corners
            )
            probabilities = whole.softmax(1)  # predict_whole, as predict_multiscale does at one scale
        else:
            probabilities = predict_multiscale(self, images, num_classes=self.hparams.num_classes, **test)
        preds = F.interpolate(
            probabilities, size=label.shape[-2:], mode="bilinear", align_corners=self.align_corners
        ).argmax(1)  # probabilities at the label's size: their argmax is the prediction
        self.evaluator.update(preds, label, batch.get("meta", {}).get("index"))
        return {"preds": preds}

    def on_validation_epoch_end(self) -> None:
        metrics = self.evaluator.compute()  # DDP: summed over ranks, each sample once
        self.last_val_metrics = metrics
        # every rank holds the same summed matrix and loss, so no further sync of these values is needed
        self.log("val/loss", self.val_loss.compute(self.device))
        self.log("val/mIoU", metrics["mIoU"], prog_bar=True)
        self.log("val/pixel_accuracy", metrics["pixel_accuracy"])
        per_class = metrics["per_class_iou"]
        for name, key in class_metric_names(per_class).items():
            if per_class[name] == per_class[name]:  # skip NaN (class neither present nor predicted)
                self.log(key, per_class[name])

    def configure_optimizers(self) -> dict[str, Any]:
        hp = self.hparams
        optimizer = build_optimizer(
            "sgd", self.parameters(), hp.lr, hp.weight_decay, hp.momentum, hp.nesterov
        )
        total = hp.total_steps or int(self.trainer.estimated_stepping_batches)
        return lambda_scheduler(optimizer, poly_lambda(total, hp.poly_power), interval="step")
