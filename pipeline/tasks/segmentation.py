"""Segmentation: Cityscapes layout in, mIoU out."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch

from hrnet.data.cityscapes import IGNORE_INDEX, NUM_CLASSES, label_id_lut, read_label_ids
from hrnet.data.issues import IssueLog
from hrnet.data.segmentation_dataset import SegmentationDataModule
from hrnet.data.synthetic.cityscapes import generate_cityscapes
from hrnet.data.validation import check_cityscapes_split
from hrnet.evaluation.distributed import is_global_zero
from hrnet.evaluation.evaluators import SegmentationEvaluator
from hrnet.evaluation.segmentation import (
    denormalize,
    write_label_png,
    write_overlay,
)
from hrnet.io import atomic_write_json
from hrnet.tasks.segmentation import SegmentationModule
from pipeline.common import PREPARED_DIR
from pipeline.params import Params
from pipeline.tasks.base import (
    INDEX_DIR,
    data_root,
    evaluation_trainer,
    index_reference,
    network_kwargs,
    read_index,
)

log = logging.getLogger("pipeline.segmentation")

GENERATE_SYNTHETIC = generate_cityscapes
MODULE = SegmentationModule


def prepare(params: Params, out_dir: Path, issues: IssueLog) -> None:
    """Checks the Cityscapes-layout data at ``data.root`` (bad pairs go to ``issues``); writes the
    pair list of each split."""
    root = data_root(params)
    for role, split in (("train", params.data.train_split), ("val", params.data.val_split)):
        pairs = check_cityscapes_split(root, split, role=role, issues=issues)
        path = out_dir / INDEX_DIR / f"{role}.json"
        index: dict[str, Any] = {
            "task": "segmentation",
            "split": split,
            "pairs": [[index_reference(i, path), index_reference(lbl, path)] for i, lbl in pairs],
        }
        if issues.count_for(role):
            index["skipped_records"] = issues.count_for(role)
        atomic_write_json(path, index)
        log.info("%s: %d image/label pairs under %s", role, len(pairs), root)


def build_datamodule(params: Params, prepared_dir: Path) -> SegmentationDataModule:
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
    )


def build_module(params: Params, prepared_dir: Path = PREPARED_DIR) -> SegmentationModule:
    seg = params.segmentation
    return SegmentationModule(
        **network_kwargs(params),
        lr=seg.lr,
        momentum=seg.momentum,
        weight_decay=seg.weight_decay,
        poly_power=seg.poly_power,
        loss=seg.loss,
        ohem_thresh=seg.ohem_thresh,
        ohem_min_kept=seg.ohem_min_kept,
        class_weights=seg.class_weights,
    )


def _majority_class(params: Params, prepared_dir: Path) -> int:
    """The train id covering most labelled training pixels (the trivial baseline's answer)."""
    lut = label_id_lut().astype(np.int64)
    counts = np.zeros(256, dtype=np.int64)
    for _, label_path in read_index(prepared_dir, "train")["pairs"]:
        counts += np.bincount(lut[read_label_ids(label_path)].ravel(), minlength=256)
    return int(counts[:NUM_CLASSES].argmax())


class _Outputs(pl.Callback):
    """Writes each validated image's label-id PNG and, for the first ``num_figures`` images, an
    overlay; scores the majority-class baseline on the same labels. Every DDP rank writes its shard."""

    def __init__(self, dataset: Any, out_dir: Path, num_figures: int, majority: int) -> None:
        self.dataset, self.out_dir, self.num_figures, self.majority = dataset, out_dir, num_figures, majority
        self.baseline = SegmentationEvaluator(NUM_CLASSES, IGNORE_INDEX)

    def on_validation_batch_end(
        self, trainer: pl.Trainer, module: pl.LightningModule, outputs: Any, batch: Any, batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:  # fmt: skip
        labels, preds, indices = batch["label"].long(), outputs["preds"], batch["meta"]["index"]
        self.baseline.update(torch.full_like(labels, self.majority), labels, indices)
        for pred, label, image, index in zip(preds.cpu(), labels.cpu(), batch["image"], indices.tolist()):
            stem = Path(self.dataset.pairs[index][0]).name.replace("_leftImg8bit.png", "")
            write_label_png(self.out_dir / "predictions" / f"{stem}_pred_labelIds.png", pred.numpy())
            if index < self.num_figures:  # the first images of the split, whichever rank has them
                overlay = self.out_dir / "figures" / f"{stem}.png"
                write_overlay(overlay, denormalize(image), pred.numpy(), label_map=label.numpy())


def evaluate(
    module: SegmentationModule, params: Params, prepared_dir: Path, out_dir: Path
) -> dict[str, Any] | None:
    """mIoU of ``module`` and of the majority-class baseline; writes label-id PNGs and overlays.
    Under DDP every rank validates and writes its shard; rank 0 returns the metrics."""
    test = params.evaluate.segmentation
    datamodule = build_datamodule(params, prepared_dir)
    datamodule.setup("validate")
    module.set_test_time(
        test.scales, test.flip, params.segmentation.crop_size if test.mode == "sliding" else None
    )
    outputs = _Outputs(
        datamodule.val_dataset, out_dir, params.evaluate.num_figures, _majority_class(params, prepared_dir)
    )
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


def package_meta(params: Params, prepared_dir: Path = PREPARED_DIR) -> dict[str, Any]:
    return {
        "input_size": list(params.segmentation.crop_size),
        "num_classes": NUM_CLASSES,
        "outputs": f"{NUM_CLASSES} Cityscapes train-id logits at 1/4 input resolution",
    }
