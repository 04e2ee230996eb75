"""Mask R-CNN through the train, evaluate and package stages as DVC runs them (each its own process)
on the prepared tiny data: segm AP beside box AP, and an ONNX package that gives, through
``hrnet predict``, the evaluate stage's boxes and masks. (Every framework learning, and its torch
package giving the evaluate stage's detections: tests/test_detection_framework_learning.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import stage, tiny_project
from detection_helpers import assert_predict_gives_evaluated


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_mask_rcnn_packages_give_the_evaluate_stage_s_boxes_and_masks(tmp_path: Path, monkeypatch) -> None:
    """Mask R-CNN through train, evaluate and package: validation logs val/segm_AP, metrics.json holds
    segm AP beside box AP and both box-filled baselines, segm_results.json lists the bbox results'
    detections in their order; the ONNX package, through ``hrnet predict``, gives per val image the
    evaluate stage's detections and masks (detection_helpers.assert_predict_gives_evaluated)."""
    project = tiny_project(
        tmp_path / "p", prepared=True, task="detection", model={"head": "v2p"},
        detection={"detector": "mask_rcnn"}, train={"epochs": 1, "limit_train_batches": 2},
        evaluate={"detection": {"score_threshold": 0.0}},  # 2 steps train nothing: keep every box
        package={"format": "onnx"},
    )  # fmt: skip
    for name in ("train", "evaluate", "package"):
        stage(project, name)
    logged = json.loads((project / "dvclive/metrics.json").read_text())
    assert {"AP", "segm_AP", "segm_AP50", "segm_AP_L"} <= set(logged["val"])
    metrics = json.loads((project / "reports/metrics.json").read_text())
    segm = {"segm_AP", "segm_AP50", "segm_AP75", "segm_AP_S", "segm_AP_M", "segm_AP_L"}
    assert segm | {"AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L"} <= set(metrics)
    assert segm <= set(metrics["baseline_center_box"]) and set(metrics["baseline_own_boxes_as_masks"]) == segm
    assert all(0.0 <= metrics[name] <= 1.0 for name in segm)
    boxes = json.loads((project / "reports/predictions/bbox_results.json").read_text())
    masks = json.loads((project / "reports/predictions/segm_results.json").read_text())
    assert len(boxes) == len(masks) > 0
    for box, mask in zip(boxes, masks, strict=True):
        assert set(box) == {"image_id", "category_id", "bbox", "score"}
        assert set(mask) == {"image_id", "category_id", "segmentation", "score"}
        assert [box[k] for k in ("image_id", "category_id", "score")] == [
            mask[k] for k in ("image_id", "category_id", "score")
        ]
        assert isinstance(mask["segmentation"]["counts"], str) and len(mask["segmentation"]["size"]) == 2
    assert len(list((project / "reports/figures").iterdir())) == 2
    (package,) = (project / "dist").iterdir()
    monkeypatch.chdir(project)
    assert json.loads((package / "package.json").read_text())["produces_masks"] is True
    assert assert_predict_gives_evaluated(project, package, project / "out") > 0
