"""A segmentation package predicts what the evaluate stage predicted: its label maps equal
reports/predictions, with the default test-time settings and with evaluate.segmentation.flip."""

import json
import subprocess

import cv2
import numpy as np
import pytest
from conftest import project_env, tiny_project

pytestmark = pytest.mark.slow


def _dvc(project, *args: str) -> None:
    done = subprocess.run(["dvc", *args], cwd=project, env=project_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def _package_matches_evaluate(project) -> dict:
    import hrnet
    from hrnet.data.images import read_image
    from hrnet.evaluation.segmentation import train_ids_to_label_ids
    from hrnet.tasks.base import read_index

    (package_dir,) = (project / "dist").iterdir()
    package = hrnet.load_package(package_dir)
    pairs = read_index(project / "data" / "prepared", "val")["pairs"]
    classes = set()
    for image_path, _ in pairs:
        stem = image_path.name.replace("_leftImg8bit.png", "")
        evaluated = cv2.imread(str(project / "reports" / "predictions" / f"{stem}_pred_labelIds.png"), -1)
        predicted = train_ids_to_label_ids(package.predict(read_image(image_path)))
        assert predicted.shape == evaluated.shape
        assert np.array_equal(predicted, evaluated), f"{stem}: {(predicted != evaluated).mean():.3%} differ"
        classes |= set(np.unique(predicted).tolist())
    assert len(classes) >= 2  # a constant map would agree whatever the settings
    return package.meta


@pytest.mark.timeout(1200)
def test_a_segmentation_package_predicts_what_evaluate_predicted(tmp_path):
    project = tiny_project(
        tmp_path / "project",
        commit=True,
        task="segmentation",
        train={"epochs": 4, "num_workers": 0},
        segmentation={"lr": 0.1},
    )
    _dvc(project, "repro")
    meta = _package_matches_evaluate(project)
    assert (meta["flip"], meta["scales"], meta["mode"]) == (False, [1.0], "whole")
    _dvc(
        project,
        "exp",
        "run",
        "-S",
        "evaluate.segmentation.flip=true",
        "-S",
        "evaluate.segmentation.scales=[0.75,1.0]",
    )
    meta = _package_matches_evaluate(project)
    assert (meta["flip"], meta["scales"]) == (True, [0.75, 1.0])
    assert json.loads((project / "reports" / "metrics.json").read_text())["mIoU"] >= 0
