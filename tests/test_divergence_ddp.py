"""A NaN loss on one DDP rank of two (gloo on CPU): every rank stops, the stage says so in one line
and exits 2, and no model.ckpt is written (the train stage as DVC runs it, with a fault injected on
rank 1 by tests/divergence_probe.py)."""

import subprocess
import sys

import pytest
import torch
from conftest import project_env, tiny_project

pytestmark = pytest.mark.slow


@pytest.mark.timeout(600)
def test_a_nan_on_one_rank_stops_every_rank_with_one_line(tmp_path):
    project = tiny_project(tmp_path / "p", prepared=True, train={"devices": 2, "epochs": 2})
    result = subprocess.run(
        [sys.executable, "-m", "tests.divergence_probe"],
        cwd=project, env=project_env(), capture_output=True, text=True, timeout=540,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 2, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, output[-3000:]
    last = torch.load(project / "models/last.ckpt", map_location="cpu", weights_only=True)
    assert errors[0].startswith(
        f"error: training diverged at epoch 1, step {last['global_step']}: loss nan on rank 1"
    )
    assert "Traceback" not in output, output[-3000:]
    assert not (project / "models/model.ckpt").exists()
    assert last["epoch"] == 0
