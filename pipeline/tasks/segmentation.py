"""Segmentation: Cityscapes layout in, mIoU out."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from hrnet.data.cityscapes import IGNORE_INDEX, NUM_CLASSES, label_id_lut, read_label_ids
from hrnet.data.issues import IssueLog
from hrnet.data.segmentation_dataset import SegmentationDataModule
from hrnet.data.synthetic.cityscapes import generate_cityscapes
from hrnet.data.validation import check_cityscapes_split
from hrnet.evaluation.segmentation import (
    confusion_matrix,
    denormalize,
    iou_from_confusion,
    predict_multiscale,
    write_label_png,
    write_overlay,
)
from hrnet.io import atomic_write_json
from hrnet.tasks.segmentation import SegmentationModule
from pipeline.common import PREPARED_DIR
from pipeline.params import Params
from pipeline.tasks.base import INDEX_DIR, data_root, index_reference, read_index

log = logging.getLogger("pipeline.segmentation")

MODULE = SegmentationModule


def synthesize(params: Params, out_dir: Path) -> None:
    """Writes the embedded synthetic Cityscapes dataset to ``out_dir``."""
    synthetic = params.data.synthetic.segmentation
    summary = generate_cityscapes(
        out_dir,
        num_train=synthetic.num_train_images,
        num_val=synthetic.num_val_images,
        image_size=tuple(synthetic.image_size),
        seed=params.seed,
    )
    log.info("generated synthetic Cityscapes: %s", {k: summary[k] for k in ("train", "val") if k in summary})


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
        model_name=params.model.name,
        head=params.model.head,
        pretrained=params.model.pretrained,
        lr=seg.lr,
        momentum=seg.momentum,
        weight_decay=seg.weight_decay,
        poly_power=seg.poly_power,
        loss=seg.loss,
        ohem_thresh=seg.ohem_thresh,
        ohem_min_kept=seg.ohem_min_kept,
        class_weights=seg.class_weights,
        model_options=params.model.architecture(),
    )


def _majority_class(params: Params, prepared_dir: Path) -> int:
    """The train id covering most labelled training pixels (the trivial baseline's answer)."""
    lut = label_id_lut().astype(np.int64)
    counts = np.zeros(256, dtype=np.int64)
    for _, label_path in read_index(prepared_dir, "train")["pairs"]:
        counts += np.bincount(lut[read_label_ids(label_path)].ravel(), minlength=256)
    return int(counts[:NUM_CLASSES].argmax())


@torch.no_grad()
def evaluate(module: SegmentationModule, params: Params, prepared_dir: Path, out_dir: Path) -> dict[str, Any]:
    """mIoU of ``module`` and of the majority-class baseline; writes label-id PNGs and overlays."""
    test = params.evaluate.segmentation
    datamodule = build_datamodule(params, prepared_dir)
    datamodule.setup("validate")
    dataset = datamodule.val_dataset
    crop = params.segmentation.crop_size if test.mode == "sliding" else None
    confusion = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
    baseline = torch.zeros_like(confusion)
    majority = _majority_class(params, prepared_dir)
    figures = 0
    for batch in datamodule.val_dataloader():
        scores = predict_multiscale(
            module, batch["image"], test.scales, test.flip, crop_size=crop, num_classes=NUM_CLASSES
        )
        labels = batch["label"].long()
        scores = F.interpolate(
            scores, size=labels.shape[-2:], mode="bilinear", align_corners=module.align_corners
        )
        preds = scores.argmax(1)
        confusion_matrix(preds, labels, NUM_CLASSES, IGNORE_INDEX, out=confusion)
        confusion_matrix(torch.full_like(labels, majority), labels, NUM_CLASSES, IGNORE_INDEX, out=baseline)
        for pred, label, image, index in zip(preds, labels, batch["image"], batch["meta"]["index"]):
            image_path = Path(dataset.pairs[int(index)][0])
            stem = image_path.name.replace("_leftImg8bit.png", "")
            write_label_png(out_dir / "predictions" / f"{stem}_pred_labelIds.png", pred.numpy())
            if figures < params.evaluate.num_figures:
                overlay = out_dir / "figures" / f"{stem}.png"
                write_overlay(overlay, denormalize(image), pred.numpy(), label_map=label.numpy())
                figures += 1
    ours, base = iou_from_confusion(confusion), iou_from_confusion(baseline)
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


def package_meta(params: Params) -> dict[str, Any]:
    return {
        "input_size": list(params.segmentation.crop_size),
        "num_classes": NUM_CLASSES,
        "outputs": f"{NUM_CLASSES} Cityscapes train-id logits at 1/4 input resolution",
    }
