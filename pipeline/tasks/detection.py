"""Detection: COCO instances in, COCO bbox AP out, with a torchvision detector on the HRNet pyramid."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from hrnet.data.detection_dataset import DetectionDataModule
from hrnet.data.detection_records import (
    CategoryMap,
    DetectionSplit,
    categories_of,
    detection_records,
    in_folder,
)
from hrnet.data.formats.coco import load_coco
from hrnet.data.issues import IssueLog
from hrnet.data.synthetic.coco_instances import generate_coco_detection
from hrnet.data.validation import CheckedSplit, check_coco_split, locate_split
from hrnet.evaluation.coco_boxes import (
    center_box_baseline,
    draw_boxes,
    evaluate_boxes,
)
from hrnet.evaluation.distributed import is_global_zero
from hrnet.io import atomic_write_json
from hrnet.models.detection import SMALL_IMAGE_SETTINGS
from hrnet.tasks.detection import DetectionModule
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

log = logging.getLogger("pipeline.detection")

GENERATE_SYNTHETIC = generate_coco_detection
MODULE = DetectionModule
REPORTED_STATS = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L")


def write_split_index(path: Path, checked: CheckedSplit, split: str) -> None:
    """Writes the prepared index of one checked split: its records, categories and scoring file."""
    categories = checked.categories
    assert categories is not None  # check_coco_split sets those of an instances file
    index: dict[str, Any] = {
        "task": "detection",
        "split": split,
        "ann_file": index_reference(checked.ann_file, path),
        "image_dir": index_reference(checked.image_dir, path),
        "categories": categories.label_names,
        "category_ids": list(categories.category_ids),
        "records": checked.records,
    }
    if checked.skipped:
        index["skipped_records"] = checked.skipped
    atomic_write_json(path, index, indent=None)


def write_checked_index(path: Path, ann_file: Path, image_dir: Path, split: str) -> None:
    """The index of a split an earlier prepare stage checked already (its images are not read again)."""
    coco = load_coco(ann_file, "instances")
    checked = CheckedSplit(
        detection_records(coco), image_dir, ann_file, ann_file, categories=categories_of(coco)
    )
    write_split_index(path, checked, split)


def prepare(params: Params, out_dir: Path, issues: IssueLog) -> None:
    """Locates and checks the COCO-layout data at ``data.root`` (bad records go to ``issues``);
    writes the index of each split."""
    root = data_root(params)
    for role, split in (("train", params.data.train_split), ("val", params.data.val_split)):
        ann_file, image_dir = locate_split(params.data.source, root, split, "instances")
        checked = check_coco_split(
            ann_file, image_dir, "instances", split=role, out_dir=out_dir, issues=issues
        )
        write_split_index(out_dir / INDEX_DIR / f"{role}.json", checked, split)
        log.info("%s: %d images from %s", role, len(checked.records), ann_file)


def read_split(prepared_dir: Path, role: str) -> DetectionSplit:
    """The prepared split of ``role`` ("train" or "val"): records with their image paths resolved."""
    index = read_index(prepared_dir, role)
    names = index["categories"]
    categories = CategoryMap(
        tuple(index["category_ids"]), tuple(names[str(label)] for label in range(1, len(names) + 1))
    )
    return DetectionSplit(in_folder(index["records"], index["image_dir"]), categories, index["ann_file"])


def build_datamodule(params: Params, prepared_dir: Path) -> DetectionDataModule:
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


def build_module(params: Params, prepared_dir: Path = PREPARED_DIR) -> DetectionModule:
    det = params.detection
    categories = read_split(prepared_dir, "val").categories
    network = network_kwargs(params)
    network["model_options"].pop("pyramid_channels", None)  # the detector's own argument
    return DetectionModule(
        **network,
        num_classes=categories.num_classes,
        detector=det.detector,
        min_size=det.min_size,
        max_size=det.max_size,
        anchor_scale=det.anchor_scale,
        pyramid_channels=params.model.pyramid_channels,
        detector_kwargs=dict(SMALL_IMAGE_SETTINGS) if det.preset == "small" else None,
        label_to_category={int(k): int(v) for k, v in categories.label_to_category.items()},
        optimizer=det.optimizer,
        lr=det.lr,
        momentum=det.momentum,
        weight_decay=det.weight_decay,
        warmup_steps=det.warmup_steps,
        schedule=det.schedule,
        lr_steps=tuple(det.lr_steps),
        lr_factor=det.lr_factor,
    )


def evaluate(
    module: DetectionModule, params: Params, prepared_dir: Path, out_dir: Path
) -> dict[str, Any] | None:
    """COCO bbox AP of ``module`` and of the centre-box baseline; writes results and overlays.
    Under DDP every rank validates its shard; rank 0 writes and returns the metrics."""
    module.set_score_threshold(params.evaluate.detection.score_threshold)
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


def package_meta(params: Params, prepared_dir: Path = PREPARED_DIR) -> dict[str, Any]:
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
