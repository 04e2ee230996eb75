"""Training launched as users launch it (torchrun across two nodes), and params refused before any
work is done."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from conftest import copy_project, imported_modules, project_env, stage, tiny_params, tiny_project
from ddp_helpers import assert_one_set_of_artifacts

from pipeline.common import check_pretrained
from pipeline.params import ConfigError, parse_params

RUN = {"train": {"epochs": 1, "num_workers": 0}, "task": "segmentation"}


def run(
    project: Path, *command: str, env: dict | None = None, timeout: int = 900
) -> subprocess.CompletedProcess:
    return subprocess.run(
        list(command), cwd=project, env=env or project_env(), capture_output=True, text=True, timeout=timeout
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_two_torchrun_nodes_equal_one_node_with_two_devices(tmp_path):
    one_node = tiny_project(
        tmp_path / "one", prepared=True, task=RUN["task"], train={**RUN["train"], "devices": 2}
    )
    assert_one_set_of_artifacts(one_node, "mIoU")  # trains and evaluates (test_distributed's DDP checks)

    two_nodes = tiny_project(
        tmp_path / "two",
        prepared=True,
        task=RUN["task"],
        train={**RUN["train"], "devices": 1, "num_nodes": 2},
    )
    port = str(free_port())
    torchrun = str(Path(sys.executable).parent / "torchrun")
    nodes = [
        subprocess.Popen(
            [
                torchrun,
                "--nnodes=2",
                "--nproc-per-node=1",
                f"--node-rank={rank}",
                "--master-addr=127.0.0.1",
                f"--master-port={port}",
                "-m",
                "pipeline.train",
            ],
            cwd=two_nodes,
            env=project_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    try:
        outputs = [node.communicate(timeout=900)[0] for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(o[-3000:] for o in outputs)
    # one set of artifacts, written by global rank 0
    assert sorted(p.name for p in (two_nodes / "models").iterdir()) == ["last.ckpt", "model.ckpt"]
    assert not list(two_nodes.glob("lightning_logs")) and not list(two_nodes.glob("dvclive*/**/*rank*"))
    stage(two_nodes, "evaluate")
    one = json.loads((one_node / "reports" / "metrics.json").read_text())
    two = json.loads((two_nodes / "reports" / "metrics.json").read_text())
    assert two == one


STAGES = ("synthesize", "prepare", "train", "evaluate", "package", "tune", "person_detector")
HEAVY = {"torch", "pytorch_lightning", "ray"}  # seconds to import: never for params that are refused


def refused(project: Path, stage_name: str) -> str:
    """The one line ``python -m pipeline.<stage_name>`` exits 2 with, having imported none of HEAVY."""
    result = run(project, sys.executable, "-X", "importtime", "-m", f"pipeline.{stage_name}", timeout=120)
    assert result.returncode == 2, result.stderr[-3000:]
    lines = [line for line in result.stderr.strip().splitlines() if not line.startswith("import time:")]
    assert len(lines) == 1, "\n".join(lines)
    loaded = imported_modules(result.stderr) & HEAVY
    assert not loaded, f"pipeline.{stage_name} imported {sorted(loaded)} before refusing: {lines[0]}"
    return lines[0]


@pytest.fixture
def bare_project(tmp_path) -> Path:
    """A project with params but no data: a refused stage must fail before any work."""
    return copy_project(tmp_path / "project")


def set_params(project: Path, **overrides) -> None:
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(**overrides), sort_keys=False))


@pytest.mark.slow  # one stage process per case
@pytest.mark.parametrize(
    ("train", "expected"),
    [
        ({"devices": 0}, "train.devices: expected a device count >= 1, -1 for all, or auto; got 0"),
        ({"num_nodes": 0}, "train.num_nodes: Input should be greater than or equal to 1"),
        ({"accelerator": "tpu7"}, "train.accelerator: Input should be 'cpu', 'gpu', 'cuda', 'mps' or 'auto'"),
        ({"deterministic": "sometimes"}, "train.deterministic"),
    ],
)
def test_bad_trainer_params_are_refused_by_every_stage(bare_project, train, expected):
    """Every stage loads params the same way (run_stage) and refuses them before importing torch,
    Lightning or Ray: each stage for the first value, the lightest for the others."""
    set_params(bare_project, train=train)
    for name in STAGES if "devices" in train else ("synthesize",):
        assert expected in refused(bare_project, name)


@pytest.mark.slow  # two stage processes
def test_a_missing_pickled_or_mismatched_pretrained_file_is_refused_in_one_line(bare_project, tmp_path):
    """Through the stages for a missing file; the pickled and mismatched files through the check that
    run_stage makes before any work (pipeline.common.check_pretrained), in this process."""
    missing = tmp_path / "nowhere.pth"
    set_params(bare_project, model={"pretrained": str(missing)})
    for name in ("train", "tune"):
        assert refused(bare_project, name) == (
            f"error: model.pretrained: {missing}: file not found (expected an HRNet checkpoint)"
        )

    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "config": object()}, pickled)
    line = pretrained_refusal(pickled)
    assert line.startswith(f"model.pretrained: refusing to load {pickled}: it carries pickled Python")

    import hrnet

    w32 = tmp_path / "w32.pth"
    torch.save(hrnet.create_backbone("hrnet_w32", head="v1").state_dict(), w32)
    line = pretrained_refusal(w32)
    assert line.startswith(f"model.pretrained: checkpoint {w32} is HRNet-W32")
    assert "but the model is hrnet_w18_small" in line


def pretrained_refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as error:
        check_pretrained(parse_params(tiny_params(model={"pretrained": str(path)})))
    assert "\n" not in str(error.value)
    return str(error.value)
