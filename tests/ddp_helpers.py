"""What a DDP training run (train.devices 2) must leave, checked by the DDP tests of several modules."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from conftest import stage

from hrnet.tasks import TASKS
from pipeline.params import parse_params


def assert_one_set_of_artifacts(project, metric: str | None) -> None:
    """Trains ``project`` (train.devices 2) and evaluates it: one set of artifacts, half the steps per rank,
    and evaluate in one process recomputes ``metric`` as DDP validation gathered it."""
    result = stage(project, "train")
    output = result.stdout + result.stderr
    assert output.count("seed 42") == 1, output[-2000:]  # no line printed once per rank
    assert sorted(p.name for p in (project / "models").iterdir()) == ["last.ckpt", "model.ckpt"]
    assert not list(project.glob("dvclive*/**/*rank*")) and not list(project.glob("lightning_logs"))
    logged = json.loads((project / "dvclive/metrics.json").read_text())["val"]

    # each rank trained on its half of every epoch (EpochSampler, drop_last): half the steps of one process
    params = parse_params(yaml.safe_load((project / "params.yaml").read_text()))
    datamodule = TASKS[params.task].build_datamodule(params, project / "data/prepared")
    datamodule.setup("fit")
    per_rank = len(datamodule.train_dataloader().dataset) // 2
    batch_size = params.model_dump()[params.task]["batch_size"]
    steps = per_rank // batch_size if per_rank >= batch_size else 1
    checkpoint = torch.load(project / "models/last.ckpt", map_location="cpu", weights_only=True)
    assert checkpoint["global_step"] == params.train.epochs * steps

    stage(project, "evaluate")
    single = json.loads((project / "reports/metrics.json").read_text())
    if metric is None:
        assert math.isfinite(logged["loss"]) and 0.0 <= single["AP"] <= 1.0
    else:  # the same weights evaluated in one process give the metric DDP validation gathered
        assert single[metric] == pytest.approx(logged[metric], abs=1e-6)
