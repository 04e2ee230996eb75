import json
from pathlib import Path

import numpy as np
import pytest

from hrnet.data.coco_reader import coco_layout, load_person_instances
from hrnet.data.synthetic.coco_keypoints import generate_coco_keypoints
from hrnet.evaluation.coco_keypoints import (
    evaluate_keypoints,
    mean_pose,
    mean_pose_predictions,
    to_coco_results,
)


@pytest.fixture(scope="module")
def val_split(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    generate_coco_keypoints(root, 1, 6, image_size=(160, 120), seed=3, progress=False)
    return coco_layout("synthetic", root, "val")


def _ground_truth_as_predictions(val_split):
    records = load_person_instances(*val_split)
    keypoints = np.array([np.asarray(r["keypoints"], dtype=float)[:, :2] for r in records])
    scores = np.array([(np.asarray(r["keypoints"])[:, 2] > 0).astype(float) for r in records])
    return records, keypoints, scores


def test_ground_truth_scores_ap_one(val_split):
    records, keypoints, scores = _ground_truth_as_predictions(val_split)
    stats = evaluate_keypoints(
        val_split[0], to_coco_results([r["image_id"] for r in records], keypoints, scores)
    )
    assert stats["AP"] == pytest.approx(1.0)
    assert stats["AR"] == pytest.approx(1.0)


def test_perturbed_predictions_score_lower(val_split):
    records, keypoints, scores = _ground_truth_as_predictions(val_split)
    rng = np.random.default_rng(0)
    sizes = np.array([[r["bbox"][2], r["bbox"][3]] for r in records])[:, None, :]
    noisy = keypoints + rng.normal(scale=0.08, size=keypoints.shape) * sizes
    ids = [r["image_id"] for r in records]
    clean = evaluate_keypoints(val_split[0], to_coco_results(ids, keypoints, scores))["AP"]
    perturbed = evaluate_keypoints(val_split[0], to_coco_results(ids, noisy, scores))["AP"]
    assert perturbed < clean - 0.2


def test_mean_pose_baseline_and_empty_results(val_split):
    records, _, _ = _ground_truth_as_predictions(val_split)
    pose = mean_pose(records)
    assert pose.shape == (17, 2)
    ids, keypoints, scores = mean_pose_predictions(records, pose)
    assert keypoints.shape == (len(records), 17, 2)
    results = to_coco_results(ids, keypoints, scores)
    assert json.loads(json.dumps(results))[0]["category_id"] == 1
    assert len(results[0]["keypoints"]) == 51
    assert evaluate_keypoints(val_split[0], [])["AP"] == 0.0
