"""Segmentation: label PNGs of a class table in, mIoU out."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from hrnet.data.cityscapes import IMAGE_SUFFIX, read_label_ids
from hrnet.data.class_table import IGNORE_INDEX, ClassTable
from hrnet.data.segmentation_dataset import SegmentationDataModule
from hrnet.errors import DataError
from hrnet.evaluation.distributed import is_global_zero
from hrnet.evaluation.evaluators import SegmentationEvaluator
from hrnet.evaluation.segmentation import (
    denormalize,
    write_label_png,
    write_overlay,
)
from hrnet.tasks.base import kwargs_for, read_index
from hrnet.tasks.lightning import evaluation_trainer, network_kwargs
from hrnet.tasks.segmentation.module import SegmentationModule
from hrnet.tasks.segmentation.prepare import prepared_table

log = logging.getLogger("hrnet.tasks.segmentation")


def build_datamodule(params: Any, prepared_dir: Path) -> SegmentationDataModule:
    seg = params.segmentation
    return SegmentationDataModule(
        None,
        pairs={role: read_index(prepared_dir, role)["pairs"] for role in ("train", "val")},
        crop_size=seg.crop_size,
        base_size=seg.base_size,
        scale_range=seg.scale_range,
        flip=seg.flip,
        batch_size=seg.batch_size,
        val_batch_size=seg.eval_batch_size,
        num_workers=params.train.num_workers,
        seed=params.seed,
        train_split=params.data.train_split,
        val_split=params.data.val_split,
        val_base_size=seg.base_size,
        table=prepared_table(prepared_dir),
    )


def build_module(params: Any, prepared_dir: Path) -> SegmentationModule:
    module = SegmentationModule(
        **network_kwargs(params),
        **kwargs_for(SegmentationModule, params.segmentation),
        class_table=prepared_table(prepared_dir).to_dict(),
    )
    # validation during training scores as evaluate does
    module.configure_test(params.evaluate.segmentation, params.segmentation.crop_size)
    return module


def _majority_class(table: ClassTable, prepared_dir: Path) -> int:
    """The train id covering most labelled training pixels (the trivial baseline's answer)."""
    lut = table.lut().astype(np.int64)
    counts = np.zeros(256, dtype=np.int64)
    for _, label_path in read_index(prepared_dir, "train")["pairs"]:
        counts += np.bincount(lut[read_label_ids(label_path, check=False)].ravel(), minlength=256)
    return int(counts[: table.num_classes].argmax())


def check_class_table(module: SegmentationModule, prepared_dir: Path) -> ClassTable:
    """The prepared data's class table, which must be the one ``module`` was trained on."""
    table = prepared_table(prepared_dir)
    if module.class_table != table:
        raise DataError(
            f"{prepared_dir}: the prepared data's classes ({table.describe()}) differ from those the "
            f"checkpoint was trained on ({module.class_table.describe()}) (expected the same class table)"
        )
    return table


class _Outputs(pl.Callback):
    """Writes each validated image's label-id PNG and, for the first ``num_figures`` images, an
    overlay; scores the majority-class baseline on the same labels. Every DDP rank writes its shard."""

    def __init__(
        self, dataset: Any, out_dir: Path, num_figures: int, table: ClassTable, majority: int
    ) -> None:
        self.dataset, self.out_dir, self.num_figures, self.majority = dataset, out_dir, num_figures, majority
        self.table = table
        self.baseline = SegmentationEvaluator(table.num_classes, IGNORE_INDEX, table.names)

    def on_validation_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        labels, preds, indices = batch["label"].long(), outputs["preds"], batch["meta"]["index"]
        self.baseline.update(torch.full_like(labels, self.majority), labels, indices)
        for pred, label, image, index in zip(preds.cpu(), labels.cpu(), batch["image"], indices.tolist()):
            name = Path(self.dataset.pairs[index][0]).name
            stem = name[: -len(IMAGE_SUFFIX)] if name.endswith(IMAGE_SUFFIX) else Path(name).stem
            write_label_png(
                self.out_dir / "predictions" / f"{stem}_pred_labelIds.png", pred.numpy(), self.table
            )
            if index < self.num_figures:  # the first images of the split, whichever rank has them
                overlay = self.out_dir / "figures" / f"{stem}.png"
                write_overlay(
                    overlay, denormalize(image), pred.numpy(), label_map=label.numpy(), table=self.table
                )


def evaluate(
    module: SegmentationModule, params: Any, prepared_dir: Path, out_dir: Path
) -> dict[str, Any] | None:
    """mIoU of ``module`` and of the majority-class baseline; writes label-id PNGs and overlays.
    Under DDP every rank validates and writes its shard; rank 0 returns the metrics."""
    test = params.evaluate.segmentation
    datamodule = build_datamodule(params, prepared_dir)
    datamodule.setup("validate")
    module.configure_test(test, params.segmentation.crop_size)
    table = check_class_table(module, prepared_dir)
    majority = _majority_class(table, prepared_dir)
    outputs = _Outputs(datamodule.val_dataset, out_dir, params.evaluate.num_figures, table, majority)
    evaluation_trainer(params, callbacks=[outputs]).validate(module, datamodule=datamodule, verbose=False)
    ours, base = module.last_val_metrics, outputs.baseline.compute()
    if not is_global_zero():
        return None
    metrics = {
        "mIoU": round(ours["mIoU"], 6),
        "pixel_accuracy": round(ours["pixel_accuracy"], 6),
        "per_class_iou": {
            k: (None if np.isnan(v) else round(v, 6)) for k, v in ours["per_class_iou"].items()
        },
        "baseline_majority_class": {
            "mIoU": round(base["mIoU"], 6),
            "pixel_accuracy": round(base["pixel_accuracy"], 6),
        },
    }
    log.info("mIoU %.4f (majority-class baseline %.4f)", metrics["mIoU"], base["mIoU"])
    return metrics


def package_meta(params: Any, prepared_dir: Path) -> dict[str, Any]:
    """The package predicts as the evaluate stage did: the val images' resize (``base_size``), the
    test-time settings of ``evaluate.segmentation`` and the model's ``align_corners``."""
    test = params.evaluate.segmentation
    table = prepared_table(prepared_dir)
    return {
        "input_size": list(params.segmentation.crop_size),
        "base_size": params.segmentation.base_size,
        "mode": test.mode,
        "scales": list(test.scales),
        "flip": test.flip,
        "align_corners": params.model.align_corners,
        "num_classes": table.num_classes,
        "class_table": table.to_dict(),
        "outputs": f"{table.num_classes} train-id logits (of class_table) at 1/4 input resolution",
    }
