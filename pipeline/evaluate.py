"""evaluate stage: COCO keypoint AP of the trained model (and of a trivial baseline) on val."""

from __future__ import annotations

import logging
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import torch

from hrnet.codecs.heatmap import MSRAHeatmapCodec
from hrnet.config import Params
from hrnet.evaluation.coco_keypoints import (
    REPORTED_STATS,
    evaluate_keypoints,
    mean_pose,
    mean_pose_predictions,
    to_coco_results,
)
from hrnet.inference import heatmaps_to_keypoints, predict_heatmaps
from hrnet.io import atomic_directory, atomic_write_json
from hrnet.tasks.pose import PoseEstimationModule
from hrnet.viz import draw_skeletons
from pipeline.common import CHECKPOINT, METRICS_FILE, REPORTS_DIR, run_stage
from pipeline.datamodules import build_pose_datamodule, read_split

log = logging.getLogger("pipeline.evaluate")


def load_module(checkpoint: Path = CHECKPOINT) -> PoseEstimationModule:
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no trained model; run the train stage first")
    return PoseEstimationModule.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True).eval()


def predict_split(module: PoseEstimationModule, params: Params) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Keypoints (N, K, 2), scores (N, K) and record indices (N,) for every val instance."""
    datamodule = build_pose_datamodule(params, eval_batch_size=params.evaluate.batch_size)
    datamodule.setup("validate")
    codec = MSRAHeatmapCodec(params.data.input_size, params.heatmap_size, params.data.sigma)
    keypoints, scores, indices = [], [], []
    for batch in datamodule.val_dataloader():
        heatmaps = predict_heatmaps(
            module, batch["image"], params.evaluate.flip_test, params.evaluate.shift_heatmap
        )
        meta = batch["meta"]
        kps, kp_scores = heatmaps_to_keypoints(heatmaps, meta["center"].numpy(), meta["scale"].numpy(), codec)
        keypoints.append(kps)
        scores.append(kp_scores)
        indices.append(meta["index"].numpy())
    return np.concatenate(keypoints), np.concatenate(scores), np.concatenate(indices)


def write_figures(
    out_dir: Path,
    image_dir: Path,
    records: list[dict],
    keypoints: np.ndarray,
    scores: np.ndarray,
    count: int,
    threshold: float,
) -> None:
    by_image: dict[int, list[int]] = defaultdict(list)
    for i, record in enumerate(records):
        by_image[record["image_id"]].append(i)
    with atomic_directory(out_dir) as tmp:
        for image_id in sorted(by_image)[:count]:
            rows = by_image[image_id]
            image_file = image_dir / records[rows[0]]["image_file"]
            image = cv2.cvtColor(cv2.imread(str(image_file), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            drawn = draw_skeletons(image, keypoints[rows], scores[rows], threshold)
            cv2.imwrite(str(tmp / f"{image_id:012d}.jpg"), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))


def evaluate(params: Params) -> None:
    torch.manual_seed(params.seed)
    split = read_split(params, "val")
    train_split = read_split(params, "train")
    module = load_module()
    keypoints, scores, indices = predict_split(module, params)
    records = [split.records[i] for i in indices]
    threshold = params.evaluate.keypoint_score_threshold
    results = to_coco_results([r["image_id"] for r in records], keypoints, scores, threshold=threshold)
    stats = evaluate_keypoints(split.meta["ann_file"], results)

    pose = mean_pose(train_split.records)
    base_ids, base_kps, base_scores = mean_pose_predictions(split.records, pose)
    baseline = evaluate_keypoints(split.meta["ann_file"], to_coco_results(base_ids, base_kps, base_scores))

    metrics = {name: round(stats[name], 6) for name in REPORTED_STATS}
    metrics["num_instances"] = len(records)
    metrics["baseline_mean_pose"] = {name: round(baseline[name], 6) for name in REPORTED_STATS}
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    atomic_write_json(REPORTS_DIR / "keypoint_results.json", results, indent=None)
    write_figures(
        REPORTS_DIR / "figures",
        split.image_dir,
        records,
        keypoints,
        scores,
        params.evaluate.num_figures,
        threshold,
    )
    atomic_write_json(METRICS_FILE, metrics)
    log.info(
        "AP %.4f (mean-pose baseline AP %.4f) on %d instances", metrics["AP"], baseline["AP"], len(records)
    )


def main() -> None:
    run_stage(evaluate)


if __name__ == "__main__":
    main()
