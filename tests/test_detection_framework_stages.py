"""Cascade R-CNN and CenterNet through the train, evaluate and package stages (as DVC runs them) on
the prepared tiny data; the torch package gives, through ``hrnet predict``, the evaluate stage's
boxes; ``package.format=onnx`` is refused in one line. Mask R-CNN through train, evaluate, package
(torch and ONNX) and predict, with segm AP and masks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import project_env, stage, tiny_project

from hrnet.cli import main
from hrnet.tasks.detection.prepare import read_split
from pipeline.common import PREPARED_DIR


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.parametrize("detector", ["cascade_rcnn", "centernet"])
def test_train_evaluate_package_and_predict(detector: str, tmp_path: Path, monkeypatch) -> None:
    project = tiny_project(
        tmp_path / "p", prepared=True, task="detection", model={"head": "v2p"},
        detection={"detector": detector}, train={"epochs": 1, "limit_train_batches": 2},
        evaluate={"detection": {"score_threshold": 0.0}},  # 2 steps train nothing: keep every box
    )  # fmt: skip
    for name in ("train", "evaluate", "package"):
        stage(project, name)
    evaluated = json.loads((project / "reports/predictions/bbox_results.json").read_text())
    (package,) = (project / "dist").iterdir()
    assert json.loads((package / "package.json").read_text())["program"] == "model.pt"

    monkeypatch.chdir(project)
    images = project / "images"
    images.mkdir()
    ids = {}
    for record in read_split(PREPARED_DIR, "val").records[:2]:
        source = Path(record["file_name"])
        (images / source.name).write_bytes(source.read_bytes())
        ids[source.name] = record["image_id"]
    assert main(["predict", "--package", str(package), str(images), "--out", "out", "--threshold", "0"]) == 0
    predicted = json.loads((project / "out/results.json").read_text())
    assert len(predicted) > 0
    for name, image_id in ids.items():  # the evaluate stage's boxes, image by image
        mine = sorted(
            (r for r in predicted if r["file_name"] == name), key=lambda r: (-r["score"], r["bbox"])
        )
        theirs = sorted(
            (r for r in evaluated if r["image_id"] == image_id), key=lambda r: (-r["score"], r["bbox"])
        )
        assert len(mine) == len(theirs), name
        for a, b in zip(mine[:10], theirs[:10], strict=True):
            assert a["score"] == pytest.approx(b["score"], abs=1e-3)
            assert a["bbox"] == pytest.approx(b["bbox"], abs=0.05)

    def package_with(**settings: str) -> str:
        """The package stage's stderr, run as DVC runs it, with these package settings; it must fail."""
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["package"].update(settings)
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        command = [sys.executable, "-m", "pipeline.package"]
        refused = subprocess.run(command, cwd=project, env=project_env(), capture_output=True, text=True)
        assert refused.returncode != 0
        return refused.stderr

    stderr = package_with(format="onnx")
    line = f"package.format=onnx: detection.detector={detector} packages as torch_export only"
    assert line in stderr, stderr[-2000:]
    stderr = package_with(format="torch_export", precision="int8")  # int8 is an ONNX graph too
    line = f"package.precision=int8 quantizes an ONNX graph, and detection.detector={detector} packages as"
    assert line in stderr, stderr[-2000:]


def _masks_by_detection(records: list[dict], boxes: list[dict] | None = None) -> list[tuple]:
    """(category, score, bbox, segmentation) per record, best first; ``boxes``: the bbox records in
    the same order, for results without ``bbox`` (segm_results.json follows bbox_results.json)."""
    rows = [
        (r["category_id"], r["score"], (boxes[i] if boxes else r)["bbox"], r["segmentation"])
        for i, r in enumerate(records)
    ]
    return sorted(rows, key=lambda row: (-row[1], row[2]))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_mask_rcnn_packages_give_the_evaluate_stage_s_boxes_and_masks(tmp_path: Path, monkeypatch) -> None:
    """Mask R-CNN through train, evaluate and package: validation logs val/segm_AP, metrics.json holds
    segm AP beside box AP and both box-filled baselines, segm_results.json lists the bbox results'
    detections in their order; torch and ONNX packages, through ``hrnet predict``, give per val image
    the evaluate stage's
    detections (score within 1e-3, box within 0.05 px) and masks (decoded RLE, IoU >= 0.9 where the
    union has 25 px or more, else at most 2 px differ: both binarise the same model's probabilities
    at 0.5, so only pixels within float rounding of 0.5 may flip)."""
    from hrnet.evaluation.coco_masks import decode_segmentation

    project = tiny_project(
        tmp_path / "p", prepared=True, task="detection", model={"head": "v2p"},
        detection={"detector": "mask_rcnn"}, train={"epochs": 1, "limit_train_batches": 2},
        evaluate={"detection": {"score_threshold": 0.0}},  # 2 steps train nothing: keep every box
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
    predictions = project / "reports/predictions"
    evaluated_boxes = json.loads((predictions / "bbox_results.json").read_text())
    evaluated = json.loads((predictions / "segm_results.json").read_text())
    assert [(r["image_id"], r["score"]) for r in evaluated] == [
        (r["image_id"], r["score"]) for r in evaluated_boxes
    ]
    (torch_package,) = (project / "dist").iterdir()
    torch_package = torch_package.rename(project / "torch_package")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["package"]["format"] = "onnx"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    stage(project, "package")
    (onnx_package,) = (project / "dist").iterdir()

    monkeypatch.chdir(project)
    images = project / "images"
    images.mkdir()
    sizes = {}
    for record in read_split(PREPARED_DIR, "val").records[:2]:
        source = Path(record["file_name"])
        (images / source.name).write_bytes(source.read_bytes())
        sizes[source.name] = (record["image_id"], record["height"], record["width"])
    for package in (torch_package, onnx_package):
        meta = json.loads((package / "package.json").read_text())
        assert meta["produces_masks"] is True
        out = project / f"out_{package.name}"
        args = ["predict", "--package", str(package), str(images), "--out", str(out), "--threshold", "0"]
        assert main(args) == 0
        predicted = json.loads((out / "results.json").read_text())
        for name, (image_id, height, width) in sizes.items():
            mine = _masks_by_detection([r for r in predicted if r["file_name"] == name])
            indices = [i for i, r in enumerate(evaluated) if r["image_id"] == image_id]
            theirs = _masks_by_detection(
                [evaluated[i] for i in indices], [evaluated_boxes[i] for i in indices]
            )
            assert len(mine) == len(theirs) > 0, (package.name, name)
            for a, b in zip(mine[:10], theirs[:10], strict=True):
                assert a[0] == b[0] and a[1] == pytest.approx(b[1], abs=1e-3)
                assert a[2] == pytest.approx(b[2], abs=0.05)
                m, t = (decode_segmentation(x[3], height, width).astype(bool) for x in (a, b))
                union, differ = (m | t).sum(), (m ^ t).sum()
                assert (1 - differ / union >= 0.9) if union >= 25 else differ <= 2, (name, union, differ)
