# ruff: noqa: F811  (the fixtures imported from test_bad_input are test arguments here)
"""prepare under data.on_bad_sample fail and skip: a truncated image, every kind of offender, clean runs
reporting zero issues, and the IssueLog and image checks on their own (continued from test_bad_input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ROOT
from test_bad_input import (  # noqa: F401  (coco, coco_template, project: fixtures)
    SIZE,
    ann_file,
    coco,
    coco_template,
    error_line,
    image_of,
    labelled,
    load,
    project,
    run_prepare,
    save,
    snapshot,
    truncate,
    write_params,
)

from hrnet.data.validation import IssueLog, check_image_file
from pipeline.common import run_stage
from pipeline.synthesize import synthesize


# ----------------------------------------------------------------------------- truncated image, both policies
@pytest.mark.slow  # a subprocess stage
def test_truncated_image_fails_from_the_cli(coco: Path, project: Path) -> None:
    image, image_id = image_of(coco)
    truncate(image)
    write_params(project, source="coco", root=str(coco))
    before = snapshot(project, coco)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    result = subprocess.run(
        [sys.executable, "-m", "pipeline.prepare"], cwd=project, env=env, capture_output=True, text=True
    )

    assert result.returncode == 2, result.stderr
    assert error_line(result.stderr) == (
        f"error: {image}: image {image_id}: truncated JPEG: no end-of-image marker "
        "(expected a complete JPEG ending in FF D9)"
    )
    assert "Traceback" not in result.stderr
    assert snapshot(project, coco) == before


def test_truncated_image_is_skipped_and_reported(
    coco: Path, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    image, image_id = image_of(coco)
    truncate(image)
    write_params(project, source="coco", root=str(coco), on_bad_sample="skip")

    code, stderr = run_prepare(project, monkeypatch, capsys)

    assert code == 0, stderr
    report = json.loads((project / "reports" / "data_issues.json").read_text())
    assert report["count"] == 1 and report["on_bad_sample"] == "skip"
    assert report["by_split"] == {"train": 1, "val": 0}
    (issue,) = report["examples"]
    assert issue["file"] == str(image) and issue["record"] == f"image {image_id}" and issue["id"] == image_id
    assert issue["reason"].startswith("truncated JPEG")

    index = json.loads((project / "data/prepared/index/train.json").read_text())
    assert index["records"] and image_id not in {r["image_id"] for r in index["records"]}
    assert index["meta"]["skipped_records"] == 1
    # evaluation ground truth is the annotation file without the skipped image
    gt = json.loads((project / "data/prepared/index" / index["meta"]["ann_file"]).read_text())
    assert image_id not in {i["id"] for i in gt["images"]} | {a["image_id"] for a in gt["annotations"]}
    val = json.loads((project / "data/prepared/index/val.json").read_text())
    assert (project / "data/prepared/index" / val["meta"]["ann_file"]).resolve() == ann_file(coco, "val")


def test_skip_lists_every_kind_of_offender(
    coco: Path, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    data = load(coco)
    first, last = data["annotations"][0], data["annotations"][-1]
    assert first["image_id"] != last["image_id"]
    first["keypoints"] = [0] * 50
    save(coco, data)
    (coco / "train2017" / f"{last['image_id']:012d}.jpg").unlink()  # an image a kept record needs
    data = load(coco, "val")
    labelled(data)["bbox"][2] = -1
    save(coco, data, "val")
    write_params(project, source="coco", root=str(coco), on_bad_sample="skip")

    code, stderr = run_prepare(project, monkeypatch, capsys)

    assert code == 0, stderr
    report = json.loads((project / "reports" / "data_issues.json").read_text())
    assert report["by_split"] == {"train": 2, "val": 1} and report["count"] == 3
    reasons = [issue["reason"] for issue in report["examples"]]
    assert any("keypoints has 50 values" in r for r in reasons)
    assert any("image file not found" in r for r in reasons)
    assert any("non-positive size" in r for r in reasons)


def test_skip_that_leaves_nothing_still_fails(
    coco: Path, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    for image in (coco / "val2017").iterdir():
        truncate(image)
    write_params(project, source="coco", root=str(coco), on_bad_sample="skip")
    before = snapshot(project, coco)

    code, stderr = run_prepare(project, monkeypatch, capsys)

    assert code == 2
    assert "no person instance with a labelled keypoint after skipping" in error_line(stderr)
    assert snapshot(project, coco) == before


def test_clean_runs_report_zero_issues(
    coco: Path, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    write_params(project, source="coco", root=str(coco))
    code, stderr = run_prepare(project, monkeypatch, capsys)
    assert code == 0, stderr
    report = json.loads((project / "reports" / "data_issues.json").read_text())
    assert (report["count"], report["examples"], report["on_bad_sample"]) == (0, [], "fail")
    index = json.loads((project / "data/prepared/index/train.json").read_text())
    assert "skipped_records" not in index["meta"]
    assert (project / "data/prepared/index" / index["meta"]["ann_file"]).resolve() == ann_file(coco)

    synthetic = {"pose": {"num_train_images": 2, "num_val_images": 1, "image_size": [SIZE, SIZE]}}
    write_params(project, source="synthetic", synthetic=synthetic)
    monkeypatch.chdir(project)
    run_stage(synthesize)
    code, stderr = run_prepare(project, monkeypatch, capsys)
    assert code == 0, stderr
    assert json.loads((project / "reports" / "data_issues.json").read_text())["count"] == 0


# ----------------------------------------------------------------------------- unit level
def test_fail_policy_raises_on_first_issue_and_skip_collects() -> None:
    failing = IssueLog("fail")
    with pytest.raises(ValueError, match=r"^a\.json: annotation 7: bad \(expected good\)$"):
        failing.add("train", Path("a.json"), "annotation 7", "bad (expected good)", 7)
    skipping = IssueLog("skip", max_examples=2)
    for i in range(5):
        skipping.add("val", Path("a.json"), f"annotation {i}", "bad", i)
    summary = skipping.summary()
    assert summary["count"] == 5 and len(summary["examples"]) == 2 and summary["by_split"] == {"val": 5}


def test_image_check_accepts_good_images(tmp_path: Path) -> None:
    image = np.random.default_rng(0).integers(0, 255, (40, 30, 3), dtype=np.uint8)
    for suffix in (".jpg", ".png"):
        path = tmp_path / f"ok{suffix}"
        cv2.imwrite(str(path), image)
        assert check_image_file(path, 30, 40) is None
        assert (
            check_image_file(path, 40, 30)
            == "image is 30x40 pixels (expected 40x30 as stated in the annotation file)"
        )
    png = (tmp_path / "ok.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    assert check_image_file(tmp_path / "cut.png", 30, 40) == (
        "not a decodable image (expected a JPEG or PNG that OpenCV can read)"
    )
