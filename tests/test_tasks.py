"""Every task x head runs through prepare -> train -> evaluate -> package on tiny synthetic data."""

import json

import pytest
import torch
from conftest import tiny_params

import hrnet
from hrnet.config import parse_params
from pipeline.evaluate import evaluate, load_module
from pipeline.package import package
from pipeline.prepare import prepare
from pipeline.train import train

EXPECTED_METRICS = {
    "pose": {"AP", "AP50", "AP75", "AP_M", "AP_L", "AR", "baseline_mean_pose"},
    "segmentation": {"mIoU", "pixel_accuracy", "per_class_iou", "baseline_majority_class"},
    "detection": {"AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "baseline_center_box"},
}


@pytest.mark.slow
@pytest.mark.parametrize("head", ["v1", "v2", "v2p"])
@pytest.mark.parametrize("task", ["pose", "segmentation", "detection"])
def test_task_head_runs_to_metrics(task, head, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params_text = json.dumps(tiny_params(task=task, model={"head": head}))
    (tmp_path / "params.yaml").write_text(params_text)
    params = parse_params(json.loads(params_text))

    prepare(params)
    train(params)
    # the metric the tune stage ranks this task's trials by is one the module logs
    logged = json.loads((tmp_path / "dvclive/metrics.json").read_text())
    section, name = params.tune.for_task(task).metric.split("/")
    assert name in logged[section]
    evaluate(params)
    metrics = json.loads((tmp_path / "reports/metrics.json").read_text())
    assert metrics["task"] == task
    assert EXPECTED_METRICS[task] <= set(metrics)
    assert list((tmp_path / "reports/figures").iterdir())
    out = package(params, tmp_path / "params.yaml")
    assert (out / "SHA256SUMS").is_file()

    # The packaged program computes what the checkpoint computes.
    model = load_module(params).model.eval()
    packaged = hrnet.load_package(out).model
    width, height = json.loads((out / "package.json").read_text())["input_size"]
    images = torch.rand(2, 3, height, width)
    with torch.no_grad():
        if task == "detection":
            expected, actual = model(list(images)), packaged(list(images))
            for mine, theirs in zip(expected, actual, strict=True):
                for key in ("boxes", "scores", "labels"):
                    torch.testing.assert_close(theirs[key], mine[key], rtol=1e-4, atol=1e-4)
        else:
            torch.testing.assert_close(packaged(images), model(images), rtol=1e-4, atol=1e-4)
