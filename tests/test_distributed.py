"""DDP on CPU (gloo), kill-and-resume, and run-to-run reproducibility of the train stage."""

import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml
from conftest import project_env, stage, tiny_project
from ddp_helpers import assert_one_set_of_artifacts

pytestmark = pytest.mark.slow


# (task, what DDP validation logs and evaluate recomputes in one process from the same weights);
# segmentation: the one-node run of tests/test_launch.py's torchrun test (checked with the same helper)
DDP_CHECKS = [("detection", "AP"), ("pose", None)]


@pytest.mark.timeout(1200)
@pytest.mark.parametrize(("task", "metric"), DDP_CHECKS)
def test_ddp_two_processes_write_one_set_of_artifacts(tmp_path, task, metric):
    project = tiny_project(tmp_path / "ddp", task=task, train={"devices": 2, "epochs": 2}, prepared=True)
    assert_one_set_of_artifacts(project, metric)


POSE_RUN = {
    "train": {"epochs": 3},
    "data": {"synthetic": {"pose": {"num_train_images": 12, "num_val_images": 3, "image_size": [128, 128]}}},
}


def test_a_killed_pose_run_resumes_to_the_same_weights_and_the_seed_matters(tmp_path):
    """Compared on the trained weights (the tiny runs' metrics are all 0.0 AP, equal whatever the
    weights): a run killed after its first epoch and resumed ends with the uninterrupted run's weights,
    bit for bit; the same run with seed 7 instead of 42, on the same data, ends elsewhere."""
    first = tiny_project(tmp_path / "first", **POSE_RUN, prepared=True)
    stage(first, "train")

    killed = tiny_project(tmp_path / "killed", **POSE_RUN, prepared=True)
    _kill_after_first_epoch(killed)
    assert not (killed / "models" / "model.ckpt").exists()
    resumed = stage(killed, "train")
    assert "resuming from models/last.ckpt (1 of 3 epochs done)" in resumed.stderr + resumed.stdout
    _assert_same_weights(_weights(killed), _weights(first))

    other = tiny_project(tmp_path / "seed7", **POSE_RUN, prepared=True)  # the seed-42 data
    params = yaml.safe_load((other / "params.yaml").read_text())
    (other / "params.yaml").write_text(yaml.safe_dump({**params, "seed": 7}, sort_keys=False))
    stage(other, "train")
    assert _largest_difference(_weights(other), _weights(first)) > 1e-3


def test_incompatible_or_corrupt_last_checkpoint_is_not_loaded(tmp_path):
    project = tiny_project(tmp_path / "p", train={"epochs": 1}, prepared=True)
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


def _kill_after_first_epoch(project):
    last = project / "models" / "last.ckpt"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.train"], cwd=project, env=project_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _weights(project):
    return torch.load(project / "models/model.ckpt", map_location="cpu", weights_only=True)["state_dict"]


def _assert_same_weights(actual, expected):
    assert expected.keys() == actual.keys()
    for name, tensor in expected.items():
        assert torch.equal(actual[name], tensor), name


def _largest_difference(actual, expected) -> float:
    """The largest elementwise difference of two state dicts' floating point tensors."""
    assert expected.keys() == actual.keys()
    return max(
        (actual[name].double() - tensor.double()).abs().max().item()
        for name, tensor in expected.items()
        if tensor.is_floating_point() and tensor.numel()
    )


def _distance(actual, expected) -> float:
    """The L2 distance of two state dicts, over all their floating point values."""
    return math.sqrt(
        sum(
            ((actual[k].double() - t.double()) ** 2).sum().item()
            for k, t in expected.items()
            if t.is_floating_point()
        )
    )


# A resumed detection run does not end bit for bit on the uninterrupted one (2026-11-30): seeding
# torch's global generator per epoch (pipeline.train.SeedEachEpoch, for torchvision's RPN/RoI box
# sampling) narrowed the gap; the rest is not yet found. Until it is, detection is held to a
# tolerance relative to what the resumed epoch does: the resumed weights' distance to the
# uninterrupted run's must be under 2 % of the distance the second epoch moved the weights (measured
# 2026-12-03: 0.6 %; the largest single difference, 0.057, is in a BatchNorm running_var of ~5). A
# resume that skipped, repeated or restarted an epoch ends about 100 % away.
DETECTION_RESUME_TOLERANCE = 0.02


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("task", ["segmentation", "detection"])
def test_a_killed_run_resumes_the_per_step_schedule_exactly(tmp_path, task):
    """Segmentation (poly) and detection (warmup + steps) set the learning rate per step from the total
    number of steps: a run killed after its first epoch and resumed must end with the weights of an
    uninterrupted one, bit for bit (CPU training is deterministic); detection within
    DETECTION_RESUME_TOLERANCE."""
    run = {"task": task, "train": {"epochs": 2}}
    reference = tiny_project(tmp_path / "reference", **run, prepared=True)
    stage(reference, "train")

    killed = tiny_project(tmp_path / "killed", **run, prepared=True)
    _kill_after_first_epoch(killed)
    assert not (killed / "models" / "model.ckpt").exists()
    after_one = torch.load(killed / "models/last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    resumed = stage(killed, "train")
    assert "resuming from models/last.ckpt (1 of 2 epochs done)" in resumed.stderr + resumed.stdout

    expected, actual = _weights(reference), _weights(killed)
    if task == "detection":
        gap, moved = _distance(actual, expected), _distance(after_one, expected)
        assert moved > 0 and gap <= DETECTION_RESUME_TOLERANCE * moved, (gap, moved)
    else:
        _assert_same_weights(actual, expected)
