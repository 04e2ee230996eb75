"""COCO keypoint scoring with pycocotools, plus the trivial mean-pose baseline."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hrnet.evaluation.cocoeval import coco_stats

KEYPOINT_STAT_NAMES = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "AR50", "AR75", "AR_M", "AR_L")
REPORTED_STATS = ("AP", "AP50", "AP75", "AP_M", "AP_L", "AR")


def person_score(keypoint_scores: np.ndarray, box_score: float = 1.0, threshold: float = 0.2) -> float:
    """Instance score as in the official top-down code: box score times mean confident joint score."""
    confident = keypoint_scores[keypoint_scores > threshold]
    return float(box_score * (confident.mean() if confident.size else 0.0))


def to_coco_results(
    image_ids: Sequence[int],
    keypoints: np.ndarray,
    keypoint_scores: np.ndarray,
    box_scores: Sequence[float] | None = None,
    threshold: float = 0.2,
    category_id: int = 1,
) -> list[dict[str, Any]]:
    """Builds the COCO results list (``keypoints`` as 3K floats ``x, y, score``) for the keypoint
    category ``category_id`` (COCO's person: 1)."""
    results = []
    for i, image_id in enumerate(image_ids):
        scores = keypoint_scores[i].reshape(-1)
        triplets = np.concatenate([keypoints[i].reshape(-1, 2), scores[:, None]], axis=1)
        results.append(
            {
                "image_id": int(image_id),
                "category_id": category_id,
                "keypoints": [round(float(v), 3) for v in triplets.reshape(-1)],
                "score": person_score(scores, 1.0 if box_scores is None else box_scores[i], threshold),
            }
        )
    return results


def evaluate_keypoints(
    annotation_file: str | Path, results: list[dict[str, Any]], sigmas: Sequence[float] | None = None
) -> dict[str, float]:
    """Runs ``COCOeval(iouType="keypoints")`` with the keypoint set's OKS ``sigmas`` (None: COCO's)
    and returns its ten stats by name (fractions)."""
    return coco_stats(annotation_file, results, "keypoints", KEYPOINT_STAT_NAMES, kpt_oks_sigmas=sigmas)


def mean_pose(records: Sequence[dict[str, Any]], num_joints: int = 17) -> np.ndarray:
    """Average labelled keypoint position of each joint, in box-normalised coordinates (K, 2)."""
    sums = np.zeros((num_joints, 2))
    counts = np.zeros((num_joints, 1))
    for record in records:
        x, y, w, h = record["bbox"]
        joints = np.asarray(record["keypoints"], dtype=np.float64).reshape(num_joints, 3)
        labelled = joints[:, 2] > 0
        sums[labelled] += (joints[labelled, :2] - (x, y)) / (w, h)
        counts[labelled] += 1
    return sums / np.maximum(counts, 1)


def mean_pose_predictions(
    records: Sequence[dict[str, Any]], pose: np.ndarray
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The trivial baseline: the mean pose stretched into every box, all joints with score 1."""
    boxes = np.asarray([r["bbox"] for r in records], dtype=np.float64).reshape(-1, 4)
    keypoints = boxes[:, None, :2] + pose[None] * boxes[:, None, 2:]
    scores = np.ones(keypoints.shape[:2])
    return [int(r["image_id"]) for r in records], keypoints, scores
