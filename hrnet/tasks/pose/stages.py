"""Pose: COCO-format keypoints in (the data's keypoint set, see hrnet.data.keypoint_meta), COCO
keypoint AP out."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.data.formats.coco import load_coco
from hrnet.data.keypoint_meta import COCO_PERSON, same_keypoints
from hrnet.data.pose_dataset import PoseIndex, TopDownPoseDataset
from hrnet.data.pose_index import index_path
from hrnet.data.sampling import epoch_loader
from hrnet.evaluation.coco_keypoints import (
    REPORTED_STATS,
    evaluate_keypoints,
    mean_pose,
    mean_pose_predictions,
    to_coco_results,
)
from hrnet.evaluation.distributed import is_global_zero
from hrnet.evaluation.evaluators import KeypointEvaluator
from hrnet.evaluation.person_detections import read_person_detections
from hrnet.io import atomic_write_json
from hrnet.tasks.base import INDEX_DIR, kwargs_for
from hrnet.tasks.lightning import evaluation_trainer, network_kwargs
from hrnet.tasks.pose.datamodule import PoseDataModule
from hrnet.tasks.pose.module import PoseEstimationModule
from hrnet.tasks.pose.prepare import read_split
from hrnet.viz import draw_skeletons

log = logging.getLogger("hrnet.tasks.pose")


def build_datamodule(params: Any, prepared_dir: Path) -> PoseDataModule:
    pose = params.pose
    return PoseDataModule(
        prepared_dir / INDEX_DIR,
        input_size=pose.input_size,
        heatmap_size=pose.heatmap_size,
        sigma=pose.sigma,
        batch_size=pose.batch_size,
        val_batch_size=pose.eval_batch_size,
        num_workers=params.train.num_workers,
        aug=vars(pose.augment),
        seed=params.seed,
    )


def build_module(params: Any, prepared_dir: Path) -> PoseEstimationModule:
    """A module with one heatmap per keypoint of the prepared data's set."""
    keypoints = read_split(prepared_dir, "train").keypoints.to_dict()
    module = PoseEstimationModule(
        **network_kwargs(params), **kwargs_for(PoseEstimationModule, params.pose), keypoints=keypoints
    )
    module.configure_test(params.evaluate.pose)  # validation during training scores as evaluate does
    return module


def _predict(
    module: PoseEstimationModule, params: Any, dataset: TopDownPoseDataset, evaluator: KeypointEvaluator
) -> None:
    """``module`` validated on ``dataset`` through Lightning (``evaluate.accelerator``, ...) with the
    test-time codec of ``evaluate.pose``, into ``evaluator`` (computed: its stats, on rank 0 its results).
    A checkpoint trained on other keypoints than the data's is refused."""
    same_keypoints(dataset.keypoints, module.keypoint_meta, "the checkpoint", "the prepared data")
    module.configure_test(params.evaluate.pose)
    module.use_evaluator(evaluator, dataset.codec)
    loader = epoch_loader(dataset, params.pose.eval_batch_size, False, params.seed, params.train.num_workers)
    evaluation_trainer(params).validate(module, dataloaders=loader, verbose=False)
    module.use_evaluator(None)


def _validate(
    module: PoseEstimationModule,
    params: Any,
    dataset: TopDownPoseDataset,
    ann_file: Path,
    box_scores: np.ndarray | None = None,
) -> KeypointEvaluator:
    """The evaluator of ``evaluate.pose``'s settings, after :func:`_predict`."""
    test = params.evaluate.pose
    evaluator = KeypointEvaluator(
        ann_file, box_scores, test.keypoint_score_threshold, test.oks_nms_threshold, test.soft_nms,
        dataset.keypoints,
    )  # fmt: skip
    _predict(module, params, dataset, evaluator)
    return evaluator


def predict_val(
    module: PoseEstimationModule, params: Any, prepared_dir: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2), scores (N, K) and record indices (N,) of every val instance."""
    datamodule = build_datamodule(params, prepared_dir)
    datamodule.setup("validate")
    ann_file = read_split(prepared_dir, "val").meta["ann_file"]
    indices, keypoints, scores = _validate(module, params, datamodule.val_dataset, ann_file).predictions
    return keypoints, scores, indices


def _detection_records(params: Any, split: PoseIndex) -> tuple[list[dict], np.ndarray]:
    """One record per detected person box of ``evaluate.pose.boxes`` on the val images, and the box scores."""
    test = params.evaluate.pose
    images = load_coco(split.meta["ann_file"], "keypoints").imgs
    found = read_person_detections(test.boxes, images, score_threshold=test.box_score_threshold)
    log.info(
        "%s: %d person boxes used of %d entries (%d of other categories, %d scoring below %s)",
        test.boxes, len(found.scores), found.num_entries, found.num_other_categories,
        found.num_below_threshold, test.box_score_threshold,
    )  # fmt: skip
    no_joints = [[0.0, 0.0, 0] for _ in range(split.keypoints.num_keypoints)]
    records = [
        {
            "image_id": int(image_id),
            "ann_id": -1,
            "image_file": images[int(image_id)]["file_name"],
            "bbox": box.tolist(),
            "keypoints": no_joints,
            "area": float(box[2] * box[3]),
        }
        for image_id, box in zip(found.image_ids, found.boxes)
    ]
    return records, found.scores


def _evaluate_detected_boxes(
    module: PoseEstimationModule,
    params: Any,
    split: PoseIndex,
    detected: tuple[list[dict], np.ndarray],
    codec: MSRAHeatmapCodec,
    out_dir: Path,
) -> dict[str, Any] | None:
    records, box_scores = detected
    ann_file = split.meta["ann_file"]
    if records:
        dataset = TopDownPoseDataset(
            records, split.image_dir, params.pose.input_size, codec, train=False, keypoints=split.keypoints
        )
        evaluator = _validate(module, params, dataset, ann_file, box_scores)
        stats, results = evaluator.last_stats, evaluator.results
    else:
        stats, results = evaluate_keypoints(ann_file, [], split.keypoints.sigmas), []
    if not is_global_zero():
        return None
    atomic_write_json(out_dir / "predictions" / "keypoint_results_detected_boxes.json", results, indent=None)
    metrics: dict[str, Any] = {name: round(stats[name], 6) for name in REPORTED_STATS}
    metrics["num_boxes"] = len(records)
    metrics["num_people_kept"] = len(results)
    metrics["boxes"] = params.evaluate.pose.boxes
    log.info("AP %.4f with the %d detected boxes of %s", metrics["AP"], len(records), metrics["boxes"])
    return metrics


def _write_figures(
    out_dir: Path,
    split: PoseIndex,
    records: list[dict],
    keypoints: np.ndarray,
    scores: np.ndarray,
    count: int,
    threshold: float,
) -> None:
    skeleton = [list(limb) for limb in split.keypoints.skeleton]
    by_image: dict[int, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        by_image[record["image_id"]].append(i)
    out_dir.mkdir(parents=True, exist_ok=True)
    for image_id in sorted(by_image)[:count]:
        rows = by_image[image_id]
        image_file = split.image_dir / records[rows[0]]["image_file"]
        image = cv2.cvtColor(cv2.imread(str(image_file), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        drawn = draw_skeletons(image, keypoints[rows], scores[rows], threshold, skeleton)
        cv2.imwrite(str(out_dir / f"{image_id:012d}.jpg"), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))


def evaluate(
    module: PoseEstimationModule, params: Any, prepared_dir: Path, out_dir: Path
) -> dict[str, Any] | None:
    """COCO keypoint AP of ``module`` at the ground-truth boxes, of the mean-pose baseline and, when
    ``evaluate.pose.boxes`` names a detections file, at its boxes; writes predictions and figures.
    Under DDP every rank validates its shard; rank 0 writes and returns the metrics."""
    torch.manual_seed(params.seed)
    split = read_split(prepared_dir, "val")
    # a bad detections file is reported before any work
    detected = None if params.evaluate.pose.ground_truth_boxes else _detection_records(params, split)
    datamodule = build_datamodule(params, prepared_dir)
    datamodule.setup("validate")
    evaluator = _validate(module, params, datamodule.val_dataset, split.meta["ann_file"])
    by_boxes = None
    if detected is not None:
        by_boxes = _evaluate_detected_boxes(module, params, split, detected, datamodule.codec, out_dir)
    if not is_global_zero():
        return None
    stats, results = evaluator.last_stats, evaluator.results
    indices, keypoints, scores = evaluator.predictions
    records = [split.records[i] for i in indices]

    meta = split.keypoints
    pose = mean_pose(read_split(prepared_dir, "train").records, meta.num_keypoints)
    base_ids, base_kps, base_scores = mean_pose_predictions(split.records, pose)
    base_results = to_coco_results(base_ids, base_kps, base_scores, category_id=meta.category_id)
    baseline = evaluate_keypoints(split.meta["ann_file"], base_results, meta.sigmas)

    atomic_write_json(out_dir / "predictions" / "keypoint_results.json", results, indent=None)
    threshold = params.evaluate.pose.keypoint_score_threshold
    _write_figures(
        out_dir / "figures", split, records, keypoints, scores, params.evaluate.num_figures, threshold
    )
    metrics: dict[str, Any] = {name: round(stats[name], 6) for name in REPORTED_STATS}
    metrics["num_instances"] = len(records)
    metrics["baseline_mean_pose"] = {name: round(baseline[name], 6) for name in REPORTED_STATS}
    log.info(
        "AP %.4f (mean-pose baseline AP %.4f) on %d instances", metrics["AP"], baseline["AP"], len(records)
    )
    if by_boxes is not None:
        metrics["detected_boxes"] = by_boxes
    return metrics


def package_meta(params: Any, prepared_dir: Path) -> dict[str, Any]:
    """The package's input, its keypoint set (the prepared data's, which evaluate checked the checkpoint
    against; COCO's person without prepared data) and the test-time settings it was evaluated with,
    which it predicts with."""
    test = params.evaluate.pose
    indexed = index_path(prepared_dir / INDEX_DIR, "val").is_file()
    keypoints = read_split(prepared_dir, "val").keypoints if indexed else COCO_PERSON
    return {
        "input_size": list(params.pose.input_size),
        "heatmap_size": list(params.pose.heatmap_size),
        "num_joints": keypoints.num_keypoints,
        "outputs": f"{keypoints.num_keypoints} keypoint heatmaps at 1/4 input resolution",
        "keypoints": keypoints.to_dict(),
        "flip_test": test.flip_test,
        "shift_heatmap": test.shift_heatmap,
        "keypoint_score_threshold": test.keypoint_score_threshold,
        "oks_nms_threshold": test.oks_nms_threshold,
        "soft_nms": test.soft_nms,
    }
