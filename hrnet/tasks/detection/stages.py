"""Detection: COCO instances in, COCO bbox AP out, with a torchvision detector on the HRNet pyramid."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hrnet.data.detection_dataset import DetectionDataModule
from hrnet.evaluation.coco_boxes import (
    center_box_baseline,
    draw_boxes,
    evaluate_boxes,
)
from hrnet.evaluation.distributed import is_global_zero
from hrnet.io import atomic_write_json
from hrnet.models.detection import SMALL_IMAGE_SETTINGS
from hrnet.tasks.base import kwargs_for
from hrnet.tasks.detection.module import DetectionModule
from hrnet.tasks.detection.prepare import read_split
from hrnet.tasks.lightning import evaluation_trainer, network_kwargs

log = logging.getLogger("hrnet.tasks.detection")

REPORTED_STATS = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")


def build_datamodule(params: Any, prepared_dir: Path) -> DetectionDataModule:
    det = params.detection
    datamodule = DetectionDataModule(
        None,
        splits={role: read_split(prepared_dir, role) for role in ("train", "val")},
        source=params.data.source,
        train_split=params.data.train_split,
        val_split=params.data.val_split,
        batch_size=det.batch_size,
        val_batch_size=det.eval_batch_size,
        num_workers=params.train.num_workers,
        flip_prob=det.flip_prob,
        seed=params.seed,
    )
    return datamodule


def build_module(params: Any, prepared_dir: Path) -> DetectionModule:
    det = params.detection
    categories = read_split(prepared_dir, "val").categories
    network = network_kwargs(params)
    network["model_options"].pop("pyramid_channels", None)  # the detector's own argument
    module = DetectionModule(
        **network,
        **kwargs_for(DetectionModule, det),
        num_classes=categories.num_classes,
        pyramid_channels=params.model.pyramid_channels,
        detector_kwargs=dict(SMALL_IMAGE_SETTINGS) if det.preset == "small" else None,
        label_to_category={int(k): int(v) for k, v in categories.label_to_category.items()},
    )
    module.configure_test(params.evaluate.detection)  # validation during training scores as evaluate does
    return module


def evaluate(
    module: DetectionModule, params: Any, prepared_dir: Path, out_dir: Path
) -> dict[str, Any] | None:
    """COCO bbox AP of ``module`` and of the centre-box baseline; writes results and overlays.
    Under DDP every rank validates its shard; rank 0 writes and returns the metrics."""
    module.configure_test(params.evaluate.detection)
    datamodule = build_datamodule(params, prepared_dir)
    datamodule.setup("validate")
    evaluation_trainer(params).validate(module, datamodule=datamodule, verbose=False)
    evaluator = module.evaluator
    if not is_global_zero():
        return None
    assert evaluator is not None
    stats, results, ids = evaluator.last_stats, evaluator.results, evaluator.image_ids
    names = datamodule.categories.label_names
    dataset = datamodule.val_dataloader().dataset  # the first images in the loader's order get figures
    for i in range(min(params.evaluate.num_figures, len(dataset))):  # type: ignore[arg-type]
        image, target = dataset[i]
        image_id = int(target["image_id"])
        boxes, scores, labels = evaluator.detections[image_id]
        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        drawn = draw_boxes(rgb, boxes, labels, scores, names, threshold=0.5)
        path = out_dir / "figures" / f"{image_id:012d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))
    baseline = evaluate_boxes(datamodule.val_ann_file, center_box_baseline(datamodule.val_ann_file))
    atomic_write_json(out_dir / "predictions" / "bbox_results.json", results, indent=None)
    metrics: dict[str, Any] = {name: round(stats[name], 6) for name in REPORTED_STATS}
    metrics["num_images"] = len(ids)
    metrics["baseline_center_box"] = {name: round(baseline[name], 6) for name in REPORTED_STATS}
    log.info("bbox AP %.4f (centre-box baseline AP %.4f)", metrics["AP"], baseline["AP"])
    return metrics


def package_meta(params: Any, prepared_dir: Path) -> dict[str, Any]:
    """The detector's input, and its classes as it was trained on them (the prepared index's):
    label i is ``categories[i - 1]``, COCO category ``category_ids[i - 1]``, for predict's captions."""
    size = params.detection.min_size
    categories = read_split(prepared_dir, "val").categories
    return {
        "input_size": [size, size],  # the square the TorchScript backbone is traced at
        "resize": {"min_size": size, "max_size": params.detection.max_size},
        "outputs": "boxes (xyxy, image pixels), labels and scores per image (torchvision format)",
        "categories": list(categories.names),
        "category_ids": list(categories.category_ids),
    }


@torch.no_grad()
def check_inputs(params: Any, prepared_dir: Path, model: Any, count: int, split: str = "val") -> torch.Tensor:
    """The first ``count`` images of ``split`` as the exported backbone sees them: resized, normalised
    and padded by the detector's own transform (one batch: later batches may be padded otherwise)."""
    datamodule = build_datamodule(params, prepared_dir)
    datamodule.setup("validate" if split == "val" else "fit")
    loader = datamodule.val_dataloader() if split == "val" else datamodule.train_dataloader()
    images = list(next(iter(loader))[0][:count])
    return model.transform(images)[0].tensors
