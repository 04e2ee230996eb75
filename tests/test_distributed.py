"""DDP on CPU (gloo), kill-and-resume, and run-to-run reproducibility of the train stage."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml
from conftest import copy_project, project_env, tiny_params

pytestmark = pytest.mark.slow


def stage(project, name, timeout=600):
    result = subprocess.run(
        [sys.executable, "-m", f"pipeline.{name}"],
        cwd=project, env=project_env(), capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"{name} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def make_project(root, **overrides):
    project = copy_project(root)
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(**overrides), sort_keys=False))
    return project


def test_ddp_two_processes_write_one_set_of_artifacts(tmp_path):
    project = make_project(tmp_path / "ddp", task="segmentation", train={"devices": 2, "epochs": 2})
    stage(project, "prepare")
    result = stage(project, "train")
    output = result.stdout + result.stderr
    assert output.count("seed 42") == 1, output[-2000:]  # no line printed once per rank
    assert sorted(p.name for p in (project / "models").iterdir()) == ["last.ckpt", "model.ckpt"]
    assert not list(project.glob("dvclive*/**/*rank*")) and not list(project.glob("lightning_logs"))
    logged = json.loads((project / "dvclive/metrics.json").read_text())["val"]["mIoU"]

    # The same weights evaluated in one process give the mIoU that DDP validation gathered.
    stage(project, "evaluate")
    single = json.loads((project / "reports/metrics.json").read_text())["mIoU"]
    assert single == pytest.approx(logged, abs=1e-6)


def _train_and_evaluate(project):
    stage(project, "train")
    stage(project, "evaluate")
    return json.loads((project / "reports/metrics.json").read_text())


POSE_RUN = {
    "train": {"epochs": 3},
    "data": {"synthetic": {"pose": {"num_train_images": 12, "num_val_images": 3, "image_size": [128, 128]}}},
}


def test_identical_runs_and_a_killed_run_resumed_give_identical_metrics(tmp_path):
    first = make_project(tmp_path / "first", **POSE_RUN)
    stage(first, "prepare")
    reference = _train_and_evaluate(first)

    second = make_project(tmp_path / "second", **POSE_RUN)
    stage(second, "prepare")
    assert _train_and_evaluate(second) == reference  # two identical runs, identical metrics.json

    killed = make_project(tmp_path / "killed", **POSE_RUN)
    stage(killed, "prepare")
    last = killed / "models" / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.train"], cwd=killed, env=project_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert not (killed / "models" / "model.ckpt").exists()

    resumed = stage(killed, "train")
    assert "resuming from models/last.ckpt" in resumed.stderr + resumed.stdout
    stage(killed, "evaluate")
    assert json.loads((killed / "reports/metrics.json").read_text()) == reference


def test_incompatible_or_corrupt_last_checkpoint_is_not_loaded(tmp_path):
    project = make_project(tmp_path / "p", train={"epochs": 1})
    stage(project, "prepare")
    stage(project, "train")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["model"]["head"] = "v2"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = stage(project, "train")
    output = result.stdout + result.stderr
    assert "refusing to resume from models/last.ckpt: it holds pose/hrnet_w18_small/v1" in output
    assert "pose/hrnet_w18_small/v2; training from scratch" in output

    (project / "models" / "last.ckpt").write_bytes(b"\x80\x02garbage")
    result = stage(project, "train")
    assert "models/last.ckpt: unreadable or foreign checkpoint" in result.stdout + result.stderr
