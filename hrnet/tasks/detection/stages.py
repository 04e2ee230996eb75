"""Detection: COCO instances in, COCO bbox AP out (and segm AP for a mask framework), with a
torchvision detector on the HRNet pyramid."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hrnet.data.coco_masks import decode_segmentation
from hrnet.data.detection_dataset import DetectionDataModule, DetectionSplit
from hrnet.data.detection_records import missing_masks
from hrnet.errors import DataError
from hrnet.evaluation.coco_boxes import (
    center_box_baseline,
    draw_boxes,
    evaluate_boxes,
)
from hrnet.evaluation.coco_segm import boxes_as_masks, evaluate_masks, image_sizes
from hrnet.evaluation.distributed import is_global_zero
from hrnet.io import atomic_write_json
from hrnet.models.detection import detector_produces_masks, small_settings
from hrnet.tasks.base import kwargs_for
from hrnet.tasks.detection.module import DetectionModule
from hrnet.tasks.detection.prepare import read_split
from hrnet.tasks.lightning import evaluation_trainer, network_kwargs

log = logging.getLogger("hrnet.tasks.detection")

REPORTED_STATS = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")
REPORTED_SEGM_STATS = tuple(f"segm_{name}" for name in REPORTED_STATS)


def check_masks(detector: str, split: DetectionSplit) -> None:
    """Refuses, in one line naming ``detection.detector`` and the file, a mask framework on a split
    whose boxes lack a ``segmentation`` (nothing to train the mask head on, nor to score segm AP
    against: pycocotools' segm evaluation needs every non-crowd annotation's)."""
    missing, total = missing_masks(split.records)
    if missing:
        raise DataError(
            f"detection.detector={detector} trains and scores instance masks, but {split.ann_file}: "
            f"{missing} of {total} non-crowd annotations have no 'segmentation' (expected polygons or "
            "RLE on each; a box-only file needs a box detector)"
        )


def build_datamodule(params: Any, prepared_dir: Path) -> DetectionDataModule:
    """The prepared splits' loaders; a mask framework's (see :func:`check_masks`) also read and
    yield the masks, which other runs never load (COCO's polygons: memory in every loader worker)."""
    det = params.detection
    with_masks = detector_produces_masks(det.detector)
    splits = {role: read_split(prepared_dir, role, with_masks=with_masks) for role in ("train", "val")}
    for split in splits.values():
        if with_masks:
            check_masks(det.detector, split)
    datamodule = DetectionDataModule(
        None,
        splits=splits,
        source=params.data.source,
        train_split=params.data.train_split,
        val_split=params.data.val_split,
        batch_size=det.batch_size,
        val_batch_size=det.eval_batch_size,
        num_workers=params.train.num_workers,
        flip_prob=det.flip_prob,
        seed=params.seed,
        with_masks=with_masks,
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
        detector_kwargs=small_settings(det.detector) if det.preset == "small" else None,
        label_to_category={int(k): int(v) for k, v in categories.label_to_category.items()},
    )
    module.configure_test(params.evaluate.detection)  # validation during training scores as evaluate does
    return module


def evaluate(
    module: DetectionModule, params: Any, prepared_dir: Path, out_dir: Path
) -> dict[str, Any] | None:
    """COCO bbox AP of ``module`` and of the centre-box baseline; writes results and overlays. A mask
    framework adds segm AP, ``segm_results.json`` (the bbox results' detections, in their order) and
    two box-filled mask baselines: the centre box's and the model's own boxes' (what its mask head
    adds over its boxes). Under DDP every rank validates its shard; rank 0 writes and returns the metrics."""
    module.configure_test(params.evaluate.detection)
    datamodule = build_datamodule(params, prepared_dir)
    datamodule.setup("validate")
    evaluation_trainer(params).validate(module, datamodule=datamodule, verbose=False)
    evaluator = module.evaluator
    if not is_global_zero():
        return None
    assert evaluator is not None
    stats, results, ids = evaluator.last_stats, evaluator.results, evaluator.image_ids
    with_masks = module.produces_masks
    write_figures(datamodule, evaluator, params.evaluate.num_figures, out_dir / "figures", with_masks)
    ann_file = datamodule.val_ann_file
    centre = center_box_baseline(ann_file)
    baseline = evaluate_boxes(ann_file, centre)
    atomic_write_json(out_dir / "predictions" / "bbox_results.json", results, indent=None)
    metrics: dict[str, Any] = {name: round(stats[name], 6) for name in REPORTED_STATS}
    metrics["num_images"] = len(ids)
    metrics["baseline_center_box"] = {name: round(baseline[name], 6) for name in REPORTED_STATS}
    log.info("bbox AP %.4f (centre-box baseline AP %.4f)", metrics["AP"], baseline["AP"])
    if with_masks:
        atomic_write_json(out_dir / "predictions" / "segm_results.json", evaluator.segm_results, indent=None)
        sizes = image_sizes(ann_file)
        centre_segm = evaluate_masks(ann_file, boxes_as_masks(centre, sizes))
        own_boxes = evaluate_masks(ann_file, boxes_as_masks(results, sizes), image_ids=ids)
        metrics |= {name: round(stats[name], 6) for name in REPORTED_SEGM_STATS}
        metrics["baseline_center_box"] |= {name: round(centre_segm[name], 6) for name in REPORTED_SEGM_STATS}
        own = {name: round(own_boxes[name], 6) for name in REPORTED_SEGM_STATS}
        metrics["baseline_own_boxes_as_masks"] = own
        log.info(
            "segm AP %.4f (centre box as mask %.4f, own boxes as masks %.4f)",
            metrics["segm_AP"], centre_segm["segm_AP"], own_boxes["segm_AP"],
        )  # fmt: skip
    return metrics


def write_figures(
    datamodule: DetectionDataModule, evaluator: Any, count: int, folder: Path, with_masks: bool
) -> None:
    """Overlays of the first ``count`` val images in the loader's order: detections scoring >= 0.5,
    with their masks filled in for a mask framework."""
    names = datamodule.categories.label_names  # type: ignore[union-attr]
    dataset = datamodule.val_dataloader().dataset
    for i in range(min(count, len(dataset))):  # type: ignore[arg-type]
        image, target = dataset[i]
        image_id = int(target["image_id"])
        boxes, scores, labels = evaluator.detections[image_id]
        height, width = image.shape[1:]
        rles = evaluator.masks[image_id] if with_masks else None
        masks = None if rles is None else [decode_segmentation(rle, height, width) for rle in rles]
        rgb = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        drawn = draw_boxes(rgb, boxes, labels, scores, names, threshold=0.5, masks=masks)
        path = folder / f"{image_id:012d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))


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
