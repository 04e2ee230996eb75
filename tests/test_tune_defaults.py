"""Each task's own search in params.yaml, run as the tune stage runs it, on one local Ray that this
module starts for its three searches (a Ray the caller started serves the sweep, as in a notebook;
the stage starting and stopping its own: tests/test_tune.py). Apart from test_tune.py's unit: this
module may run beside it, on another xdist worker."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml
from conftest import tiny_params
from tune_helpers import read_trials, users_home

from pipeline.params import parse_params
from pipeline.prepare import prepare
from pipeline.synthesize import synthesize
from pipeline.tune import run_sweep
from pipeline.tune_report import BEST_YAML, nest


@pytest.fixture(scope="module")
def local_ray(ray_home: Path) -> Any:
    """Each search starting its own Ray cost two Ray starts more (daemons, idle workers) a run."""
    with users_home(ray_home):
        ray.init(address="local", num_cpus=2, include_dashboard=False)
        yield
        ray.shutdown()


def default_search_sweep(task: str, tmp: Path) -> tuple[dict[str, Any], list[dict[str, str]], Path]:
    """params.yaml's own search for ``task`` (2 trials of 2 epochs of 2 batches) on a local Ray."""
    tune = {"num_samples": 2, "epochs": 2, "limit_train_batches": 2, "scheduler": "fifo", "num_cpus": 2}
    raw = json.loads(json.dumps(tiny_params(task=task, tune={**tune, "storage_path": str(tmp / "rr")})))
    params = parse_params(raw)
    cwd = os.getcwd()
    try:
        os.chdir(tmp)
        synthesize(params)
        prepare(params)
        run_sweep(params, Path("data/prepared"), tmp / "out")
    finally:
        os.chdir(cwd)
    return raw, read_trials(tmp / "out"), tmp / "out"


@pytest.mark.slow
@pytest.mark.parametrize("task", ["pose", "segmentation", "detection"])
def test_the_default_search_of_a_task_maximises_its_metric(task, tmp_path, local_ray):
    raw, rows, out = default_search_sweep(task, tmp_path)
    search = raw["tune"]["search"][task]
    assert search["mode"] == "max"
    metric = search["metric"]
    assert [row["status"] for row in rows] == ["completed", "completed"]
    finals = [float(row[f"{metric} final"]) for row in rows]
    assert all(0.0 <= value <= 1.0 for value in finals)
    assert finals[0] == max(finals)  # best first, for a metric where higher is better
    if task == "segmentation":  # its two trials end apart, so ranking them the wrong way fails
        assert finals[0] != finals[1]
    searched = {dim["param"] for dim in search["space"]}
    assert {key for key in rows[0] if key in searched} == searched
    assert len({json.dumps({key: row[key] for key in sorted(searched)}) for row in rows}) == 2  # differ
    best = yaml.safe_load((out / BEST_YAML).read_text())
    assert best == nest({key: json.loads(rows[0][key]) for key in searched})
    header = (out / BEST_YAML).read_text().splitlines()[0]
    assert f"by {metric} (max)" in header
