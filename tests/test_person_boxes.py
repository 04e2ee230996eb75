"""Pose scored at person boxes as the official evaluation does: rescoring, OKS-NMS, detections files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import project_env, tiny_params

import hrnet.tasks.pose.stages as pose_task
from hrnet.data.transforms import box_to_center_scale
from hrnet.evaluation.person_detections import read_person_detections
from hrnet.evaluation.rescoring import crop_areas, nms_per_image, rescore
from pipeline.params import parse_params

DETECTOR_BOXES = "data/person_detector/detections.json"


def test_rescoring_then_nms_per_image_by_hand():
    # Image 7 holds two people at the same place (OKS 1 > 0.9). P0: box 0.55, every joint 0.8 ->
    # 0.55 * 0.8 = 0.44. P1: box 0.5, ten joints 0.9 and seven 0.1 (below in_vis 0.2, left out of
    # the mean) -> 0.5 * 0.9 = 0.45; a mean over all joints would give 0.5 * 9.7 / 17 = 0.285 and
    # keep P0 instead. P2 in image 8, at the same coordinates, no joint above 0.2 -> 0; NMS runs
    # per image, so it stays.
    joint_scores = np.array([[0.8] * 17, [0.9] * 10 + [0.1] * 7, [0.1] * 17])
    scores = rescore(joint_scores, [0.55, 0.5, 1.0], in_vis_threshold=0.2)
    assert scores == pytest.approx([0.44, 0.45, 0.0])
    keypoints = np.full((3, 17, 2), 10.0)
    areas = crop_areas(np.array([[0.5, 1.0]] * 3))
    assert areas == pytest.approx([100 * 200] * 3)  # scales are in units of 200 px
    kept = nms_per_image([7, 7, 8], keypoints, joint_scores, scores, areas, threshold=0.9)
    assert kept.tolist() == [1, 2]
    # soft NMS keeps P0 with a lowered score, after P1; the threshold decides the hard case
    assert nms_per_image([7, 7, 8], keypoints, joint_scores, scores, areas, soft=True).tolist() == [1, 0, 2]
    assert nms_per_image([7, 7, 8], keypoints, joint_scores, scores, areas, threshold=1.0).tolist() == [
        1, 0, 2,
    ]  # fmt: skip


def _write(path: Path, entries) -> Path:
    path.write_text(json.dumps(entries))
    return path


def test_rescoring_an_image_without_people_gives_no_scores():
    """hrnet predict rescores each image's people; an image where the detector found none has none."""
    assert rescore(np.zeros((0, 17)), np.ones(0), 0.2).shape == (0,)
    assert rescore(np.array([[0.1, 0.5, 0.9]]), [0.5], 0.2) == pytest.approx([0.35])


def test_detections_file_filters_as_the_official_loader(tmp_path):
    person = {"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.7, "area": 1200}
    entries = [person, {**person, "category_id": 3}, {**person, "score": 0.1}, {**person, "image_id": 2}]
    found = read_person_detections(_write(tmp_path / "d.json", entries), {1, 2}, score_threshold=0.2)
    assert found.image_ids.tolist() == [1, 2]
    assert found.boxes.tolist() == [[1, 2, 30, 40]] * 2
    assert found.scores.tolist() == [0.7, 0.7]
    assert (found.num_entries, found.num_other_categories, found.num_below_threshold) == (4, 1, 1)


GOOD = {"image_id": 1, "category_id": 1, "bbox": [1, 2, 30, 40], "score": 0.7}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "not found"),
        ("[{", "not valid JSON"),
        ('{"annotations": []}', "top level is a JSON dict"),
        ([GOOD, {k: v for k, v in GOOD.items() if k != "bbox"}], "entry 1: no 'bbox' field"),
        ([{**GOOD, "bbox": [1, 2, 3]}], "entry 0: bbox is [1, 2, 3]"),
        ([{**GOOD, "bbox": [1, 2, 0, 4]}], "entry 0: bbox [1, 2, 0, 4] has no area"),
        ([{**GOOD, "score": "high"}], "entry 0: score is 'high'"),
        ([{**GOOD, "image_id": "1"}], "entry 0: image_id is '1'"),
        ([GOOD, {**GOOD, "image_id": 99}], "entry 1: image_id 99 is not an image of the evaluated split"),
    ],
)
def test_a_bad_detections_file_is_one_line_naming_file_and_field(tmp_path, content, expected):
    path = tmp_path / "dets.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises((ValueError, FileNotFoundError)) as caught:
        read_person_detections(path, {1, 2})
    message = str(caught.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


@pytest.fixture
def prepared(tmp_path, monkeypatch) -> Path:
    """The tiny synthetic pose data, synthesized and prepared as the stages do, in a scratch project."""
    from pipeline.prepare import prepare
    from pipeline.synthesize import synthesize

    monkeypatch.chdir(tmp_path)
    params = parse_params(tiny_params())
    synthesize(params)
    prepare(params)
    return tmp_path / "data" / "prepared"


def _oracle(dataset, records, evaluator) -> None:
    """A perfect network: the labelled joints of the ground-truth person whose crop this is, score 0.9
    (0.05 elsewhere), so that only the boxes and the scoring decide the results; scored by ``evaluator``."""
    truth = {}
    for record in records:
        center, _ = box_to_center_scale(record["bbox"], dataset.aspect_ratio)
        truth[(record["image_id"], *np.round(center, 3))] = np.asarray(record["keypoints"], dtype=float)
    keypoints, scores = np.zeros((len(dataset), 17, 2)), np.full((len(dataset), 17), 0.05)
    for i, (image_id, center) in enumerate(zip(dataset.image_ids, dataset.centers)):
        joints = truth.get((int(image_id), *np.round(center, 3)))
        if joints is not None:  # a box no ground-truth box makes: nothing found
            keypoints[i], scores[i] = joints[:, :2], np.where(joints[:, 2] > 0, 0.9, 0.05)
    evaluator.update(np.arange(len(dataset)), dataset.image_ids, keypoints, scores, dataset.scales.copy())
    evaluator.compute()


def test_ground_truth_boxes_as_detections_score_the_ground_truth_ap(prepared, tmp_path, monkeypatch):
    records = pose_task.read_split(prepared, "val").records
    monkeypatch.setattr(
        pose_task, "_predict", lambda module, params, data, scorer: _oracle(data, records, scorer)
    )
    ground_truth = pose_task.evaluate(None, parse_params(tiny_params()), prepared, tmp_path / "gt")
    # each ground-truth box once with score 1, plus a duplicate at score 0.5 that OKS-NMS must drop
    boxes = [{"image_id": r["image_id"], "category_id": 1, "bbox": r["bbox"], "score": 1.0} for r in records]
    doubled = [*boxes, *({**box, "score": 0.5} for box in boxes)]
    _write(tmp_path / "dets.json", doubled)
    params = parse_params(tiny_params(evaluate={"pose": {"boxes": "dets.json"}}))
    metrics = pose_task.evaluate(None, params, prepared, tmp_path / "det")

    assert ground_truth["AP"] == pytest.approx(1.0)
    detected = metrics["detected_boxes"]
    assert detected["AP"] == ground_truth["AP"] and detected["AR"] == ground_truth["AR"]
    assert (detected["num_boxes"], detected["num_people_kept"]) == (2 * len(records), len(records))
    assert "detected_boxes" not in ground_truth
    written = json.loads(
        (tmp_path / "det" / "predictions" / "keypoint_results_detected_boxes.json").read_text()
    )
    assert sorted(r["image_id"] for r in written) == sorted(r["image_id"] for r in records)


def _dvc(project: Path, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        ["dvc", *args], cwd=project, env=project_env(), capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_pose_at_the_person_detector_boxes_through_dvc(project):
    detector = {"person_detector": {"epochs": 1, "limit_train_batches": 2}}
    (project / "params.yaml").write_text(
        yaml.safe_dump(tiny_params(evaluate={"pose": detector}), sort_keys=False)
    )
    subprocess.run(["git", "commit", "-qam", "tiny"], cwd=project, check=True, env=project_env())
    # ground-truth boxes (the default): the detector is no part of the pipeline
    assert "person_detector" not in _dvc(project, "dag", "evaluate").stdout

    # the README's line: trains the detector first, since evaluate now depends on its boxes
    on_demand = "on_demand.person_detector=[run]"
    _dvc(project, "exp", "run", "-S", f"evaluate.pose.boxes={DETECTOR_BOXES}", "-S", on_demand)
    metrics = json.loads((project / "reports/metrics.json").read_text())
    detections = json.loads((project / DETECTOR_BOXES).read_text())
    assert detections and set(detections[0]) == {"image_id", "category_id", "bbox", "score"}
    assert 0.0 <= metrics["AP"] <= 1.0 and 0.0 <= metrics["detected_boxes"]["AP"] <= 1.0
    assert metrics["detected_boxes"]["num_boxes"] == len(detections) > 0
    assert metrics["detected_boxes"]["num_people_kept"] > 0
    assert "AP" in json.loads((project / "data/person_detector/metrics.json").read_text())

    # a user's file: the ground-truth boxes at score 1 score as the ground truth does
    records = json.loads((project / "data/prepared/index/val.json").read_text())["records"]
    boxes = [{"image_id": r["image_id"], "category_id": 1, "bbox": r["bbox"], "score": 1.0} for r in records]
    _write(project / "dets.json", boxes)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["evaluate"]["pose"]["boxes"] = "dets.json"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _dvc(project, "repro", "evaluate")
    metrics = json.loads((project / "reports/metrics.json").read_text())
    assert metrics["detected_boxes"]["AP"] == metrics["AP"]
    assert metrics["detected_boxes"]["num_boxes"] == len(records)

    # new contents rerun evaluate, and only what follows it
    _write(project / "dets.json", boxes[:1])
    changed = json.loads(_dvc(project, "status", "--json").stdout)
    assert "evaluate" in changed and "train" not in changed and "prepare" not in changed
    assert not [stage for stage in changed if stage.startswith("detector/")]

    # a malformed file: one line naming the file and the field, exit 2, the old metrics kept
    before = (project / "reports/metrics.json").read_bytes()
    _write(project / "dets.json", [{**boxes[0], "image_id": 123456789}])
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.evaluate"],
        cwd=project,
        env=project_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: dets.json: entry 0: image_id 123456789 is not an image of the evaluated split"
    ]
    assert (project / "reports/metrics.json").read_bytes() == before
