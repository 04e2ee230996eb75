"""COCO bbox scoring: ground truth scores 1, perturbed boxes score lower, empty results score 0."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hrnet.data.synthetic.coco_instances import generate_coco_detection
from hrnet.evaluation.coco_boxes import (
    BOX_STAT_NAMES,
    center_box_baseline,
    draw_boxes,
    evaluate_boxes,
    to_coco_detections,
)

FIXTURE_ANN = Path(__file__).parent / "fixtures" / "coco_instances_tiny" / "instances_tiny.json"


def _gt_results(ann_file: Path, jitter: float = 0.0, seed: int = 0) -> list[dict]:
    """The non-crowd ground truth as detections; ``jitter`` shifts each box by that fraction of its size."""
    rng = np.random.default_rng(seed)
    results = []
    for ann in json.loads(ann_file.read_text())["annotations"]:
        if ann.get("iscrowd"):
            continue
        x, y, w, h = ann["bbox"]
        dx, dy = rng.uniform(-jitter, jitter, 2) * (w, h)
        results.append({"image_id": ann["image_id"], "category_id": ann["category_id"],
                        "bbox": [x + dx, y + dy, w, h], "score": float(rng.uniform(0.5, 1))})  # fmt: skip
    return results


@pytest.fixture(scope="module")
def synthetic_val(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic_detection")
    generate_coco_detection(root, 0, 40, seed=3)
    return root / "annotations" / "instances_val.json"


def test_ground_truth_scores_one_on_fixture() -> None:
    stats = evaluate_boxes(FIXTURE_ANN, _gt_results(FIXTURE_ANN))
    assert list(stats) == list(BOX_STAT_NAMES)
    for name in ("AP", "AP50", "AP75", "AP_S", "AR100", "AR_S"):
        assert stats[name] == pytest.approx(1.0), name
    assert stats["AP_M"] == stats["AP_L"] == 0.0  # no medium/large objects: COCOeval's -1 reported as 0


def test_ground_truth_scores_one_on_synthetic_val_and_perturbed_lower(synthetic_val: Path) -> None:
    stats = evaluate_boxes(synthetic_val, _gt_results(synthetic_val))
    for name in ("AP", "AP_S", "AP_M", "AP_L", "AR100"):
        assert stats[name] == pytest.approx(1.0), name
    perturbed = evaluate_boxes(synthetic_val, _gt_results(synthetic_val, jitter=0.25))
    assert 0.05 < perturbed["AP"] < 0.9 and perturbed["AP50"] > perturbed["AP75"]
    baseline = evaluate_boxes(synthetic_val, center_box_baseline(synthetic_val))
    assert baseline["AP"] < 0.1


def test_empty_results_and_image_subset(synthetic_val: Path) -> None:
    assert evaluate_boxes(synthetic_val, []) == dict.fromkeys(BOX_STAT_NAMES, 0.0)
    results = [r for r in _gt_results(synthetic_val) if r["image_id"] == 1_000_001]
    assert evaluate_boxes(synthetic_val, results)["AP"] < 0.2
    assert evaluate_boxes(synthetic_val, results, image_ids=[1_000_001])["AP"] == pytest.approx(1.0)


def test_to_coco_detections_converts_boxes_and_labels() -> None:
    results = to_coco_detections(
        [7, 12],
        [np.array([[10.0, 5, 30, 35]]), np.zeros((0, 4))],
        [np.array([0.9]), np.zeros(0)], [np.array([3]), np.zeros(0, int)], {1: 1, 2: 3, 3: 44},
    )  # fmt: skip
    assert results == [{"image_id": 7, "category_id": 44, "bbox": [10.0, 5.0, 20.0, 30.0], "score": 0.9}]


def test_draw_boxes_returns_an_annotated_copy() -> None:
    image = np.zeros((64, 80, 3), np.uint8)
    out = draw_boxes(image, np.array([[5.0, 20, 40, 50]]), [2], [0.8], {2: "car"})
    assert out.shape == image.shape and out.dtype == np.uint8 and out.any() and not image.any()
    assert not draw_boxes(image, np.array([[5.0, 20, 40, 50]]), [2], [0.1], None, threshold=0.5).any()
