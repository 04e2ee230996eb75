"""The tune stage: an ASHA sweep on tiny data on a local Ray (a running cluster: test_ray_cluster.py)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shlex
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import tiny_params
from tune_helpers import read_trials, users_home

from pipeline.params import ConfigError, parse_params
from pipeline.prepare import prepare
from pipeline.synthesize import synthesize
from pipeline.tune import run_sweep, sweep_name
from pipeline.tune_report import (
    BEST_COMMAND,
    BEST_YAML,
    CURVES_PNG,
    TrialRow,
    exp_run_command,
    nest,
    rank,
)
from pipeline.tune_trials import check_space, run_trial, set_dotted

# one worker runs this module and test_ray_cluster.py (tests/conftest.py SHARED_WORKER_MODULES)

METRIC = "val/loss"
# The sweep fixture is built inside whichever of its tests runs first, so each carries its time: 20-40 s
# alone, 240 s in a CI run, over 600 s (the default timeout) while other training ran on the 2 cores
SWEEP_TIMEOUT = 1500
EPOCHS = 3
FLAKY_TRIAL = "_00001"  # this trial's first attempt raises
DIVERGING_TRIAL = "_00002"  # this trial's loss is NaN from its first step (every attempt)


def sweep_params(tmp: Path, **tune: Any) -> dict[str, Any]:
    space = [
        {"param": "pose.lr", "distribution": "loguniform", "low": 1e-4, "high": 3e-3},
        {"param": "pose.sigma", "distribution": "uniform", "low": 1.5, "high": 3.5},
    ]
    settings = {
        "search": {"pose": {"metric": METRIC, "mode": "min", "space": space}},
        "num_samples": 5,
        "epochs": EPOCHS,
        "limit_train_batches": 1,
        "grace_period": 1,
        "reduction_factor": 2,
        "num_cpus": 2,
        "max_concurrent_trials": 1,  # one trial at a time: ASHA's decisions do not depend on timing
        "storage_path": str(tmp / "ray_results"),
        "max_failures": 1,
        **tune,
    }
    return json.loads(json.dumps(tiny_params(tune=settings)))


@contextlib.contextmanager
def trial_threads() -> Iterator[None]:
    """The thread count of a 1-CPU trial (OMP_NUM_THREADS=1): float sums then add up in the same order."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def row_config(row: dict[str, str]) -> dict[str, Any]:
    fixed = {"rank", "trial_id", "status", "iterations", "retries", "node_ip", "node_id", "pid", "error"}
    return {
        key: json.loads(value)
        for key, value in row.items()
        if key not in fixed and not key.startswith(METRIC) and value
    }


def command_overrides(command: str) -> dict[str, Any]:
    words = shlex.split(command)
    assert words[:4] == ["dvc", "exp", "run", "train"]
    pairs = [words[i + 1] for i, word in enumerate(words) if word == "-S"]
    return {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in pairs)}


def make_flaky(marker_dir: str):
    """A trial function whose trial FLAKY_TRIAL raises on its first attempt (a marker file remembers)
    and whose trial DIVERGING_TRIAL trains on images holding a NaN pixel (its loss is NaN)."""

    def flaky_trial(config: dict[str, Any], spec: Any) -> None:
        from ray import tune

        from hrnet.data.pose_dataset import TopDownPoseDataset

        trial_id = tune.get_context().get_trial_id()
        marker = Path(marker_dir) / f"failed-{trial_id}"
        if trial_id.endswith(FLAKY_TRIAL) and not marker.exists():
            marker.write_text("")
            raise RuntimeError("injected fault: first attempt")
        clean = TopDownPoseDataset.__getitem__

        def nan_pixel(self: TopDownPoseDataset, key: Any) -> dict:
            item = clean(self, key)
            if self.train:
                item["image"][0, 0, 0] = math.nan
            return item

        if trial_id.endswith(DIVERGING_TRIAL):
            TopDownPoseDataset.__getitem__ = nan_pixel
        try:
            run_trial(config, spec)
        finally:
            TopDownPoseDataset.__getitem__ = clean

    return flaky_trial


@pytest.fixture(scope="session")
def sweep(tmp_path_factory, ray_home) -> dict[str, Any]:
    """One 5-trial ASHA sweep on a local Ray of 2 CPUs, with one trial failing once and one diverging."""
    work = tmp_path_factory.mktemp("tune")
    raw = sweep_params(work)
    params = parse_params(raw)
    prepared = work / "data" / "prepared"
    cwd = os.getcwd()
    os.chdir(work)
    try:
        synthesize(params)
        prepare(params)
    finally:
        os.chdir(cwd)
    (work / "markers").mkdir()
    out_dir = work / "reports" / "tune"
    started = time.monotonic()
    with users_home(ray_home):
        winner, command = run_sweep(params, prepared, out_dir, trial_fn=make_flaky(str(work / "markers")))
    return {
        "work": work,
        "home": ray_home,
        "raw": raw,
        "out": out_dir,
        "winner": winner,
        "command": command,
        "seconds": time.monotonic() - started,
    }


@pytest.mark.slow
@pytest.mark.timeout(SWEEP_TIMEOUT)
def test_asha_stops_weak_trials_and_best_yaml_holds_the_best_row(sweep):
    rows = read_trials(sweep["out"])
    assert len(rows) == 5
    # every trial drew its own params, so the sweep compares something
    assert len({json.dumps(row_config(row), sort_keys=True) for row in rows}) == 5
    healthy = [row for row in rows if not row["trial_id"].endswith(DIVERGING_TRIAL)]
    iterations = [int(row["iterations"]) for row in healthy]
    assert all(1 <= n <= EPOCHS for n in iterations)
    assert any(n < EPOCHS for n in iterations), f"ASHA stopped no trial: {iterations}"
    assert {row["status"] for row in healthy} <= {"completed", "stopped_early"}

    best = rows[0]
    assert best["rank"] == "1" and best["status"] == "completed"
    finals = [float(row[f"{METRIC} final"]) for row in rows if row["status"] == "completed"]
    assert float(best[f"{METRIC} final"]) == min(finals)
    # not tied: the varied params move the metric, every trial ended on a value of its own
    ended = [float(row[f"{METRIC} final"]) for row in healthy]
    assert len(set(ended)) == len(ended), ended
    best_yaml = yaml.safe_load((sweep["out"] / BEST_YAML).read_text())
    assert best_yaml == nest(row_config(best))
    assert set(row_config(best)) == {"pose.lr", "pose.sigma"}

    command = (sweep["out"] / BEST_COMMAND).read_text().strip()
    assert command == sweep["command"]
    assert f"# Reproduce it: {command}" in (sweep["out"] / BEST_YAML).read_text()
    overrides = command_overrides(command)
    assert {k: v for k, v in overrides.items() if not k.startswith("train.")} == row_config(best)
    assert overrides["train.epochs"] == EPOCHS and overrides["train.limit_train_batches"] == 1
    assert (sweep["out"] / CURVES_PNG).read_bytes()[:4] == b"\x89PNG"
    assert isinstance(sweep["winner"], TrialRow) and sweep["winner"].trial_id == best["trial_id"]


@pytest.mark.slow
@pytest.mark.timeout(SWEEP_TIMEOUT)
def test_a_failing_trial_is_retried_and_reported(sweep):
    rows = read_trials(sweep["out"])
    flaky = [row for row in rows if row["trial_id"].endswith(FLAKY_TRIAL)]
    assert len(flaky) == 1
    assert flaky[0]["retries"] == "1"
    assert flaky[0]["status"] in {"completed", "stopped_early"} and not flaky[0]["error"]
    assert int(flaky[0]["iterations"]) >= 1
    others = [row for row in rows if row is not flaky[0] and not row["trial_id"].endswith(DIVERGING_TRIAL)]
    assert all(row["retries"] == "0" for row in others)
    assert list((sweep["work"] / "markers").iterdir())  # the fault did fire


@pytest.mark.slow
@pytest.mark.timeout(SWEEP_TIMEOUT)
def test_a_diverging_trial_is_reported_failed_and_the_sweep_goes_on(sweep):
    rows = read_trials(sweep["out"])
    (diverged,) = [row for row in rows if row["trial_id"].endswith(DIVERGING_TRIAL)]
    assert diverged["status"] == "error" and "training diverged at epoch 0" in diverged["error"]
    assert diverged["rank"] == str(len(rows))  # ranked last: it cannot win
    others = [row for row in rows if row is not diverged]
    assert {row["status"] for row in others} <= {"completed", "stopped_early"}  # the others ran on
    assert any(row["status"] == "completed" for row in others)
    assert sweep["winner"].trial_id != diverged["trial_id"]


@pytest.mark.slow
@pytest.mark.timeout(SWEEP_TIMEOUT)
def test_the_printed_command_reproduces_the_best_trial(sweep, monkeypatch):
    from pipeline.train import train

    raw = json.loads(json.dumps(sweep["raw"]))
    for key, value in command_overrides(sweep["command"]).items():
        set_dotted(raw, key, value)
    monkeypatch.chdir(sweep["work"])  # the train stage reads data/prepared from here
    with trial_threads():
        train(parse_params(raw))
    metrics = json.loads((sweep["work"] / "dvclive" / "metrics.json").read_text())
    best = read_trials(sweep["out"])[0]
    assert metrics["val"]["loss"] == pytest.approx(float(best[f"{METRIC} final"]), rel=1e-6, abs=1e-9)


# ----------------------------------------------------------------------------- without Ray
def test_bad_search_spaces_are_refused_in_one_line():
    def refused(dim: dict[str, Any], fragment: str, checked: bool = False) -> None:
        raw = json.loads(json.dumps(tiny_params(tune={"search": {"pose": {"space": [dim]}}})))
        with pytest.raises(ConfigError) as info:
            params = parse_params(raw)
            if checked:  # keys and values are checked against the schema at the start of the stage
                check_space(params)
        assert fragment in str(info.value) and "\n" not in str(info.value)

    lrr = {"param": "pose.lrr", "distribution": "uniform", "low": 1e-4, "high": 1}
    refused(lrr, "tune.search.pose.space: pose.lrr=0.0001: unknown key 'pose.lrr'; did you mean 'pose.lr'?",
            checked=True)  # fmt: skip
    other_task = {"param": "detection.lr", "distribution": "uniform", "low": 1e-4, "high": 1}
    refused(other_task, "pose.space: detection.lr: a pose sweep searches model, train and pose keys")
    zero = {"param": "pose.batch_size", "distribution": "randint", "low": 0, "high": 4}
    refused(zero, "pose.batch_size=0: pose.batch_size: Input should be greater than or equal to 1", True)
    root = {"param": "data.root", "distribution": "choice", "values": ["/x"]}
    refused(root, "pose.space.0: data.root: only keys under model, train, pose, segmentation, detection")
    mixed = {"param": "pose.lr", "distribution": "choice", "values": [1], "low": 1}
    refused(mixed, "pose.lr: choice takes a non-empty values list and no low/high")
    refused({"param": "pose.lr", "distribution": "loguniform", "low": 0, "high": 1}, "takes low > 0")
    typo = {"param": "pose.lr", "distribution": "uniform", "low": 0, "hi": 1}
    refused(typo, "unknown key 'tune.search.pose.space.0.hi'; did you mean 'tune.search.pose.space.0.high'?")


def test_command_values_read_back_exactly():
    values = {"pose.lr": 1e-05, "pose.sigma": 2.0000000000000004, "pose.batch_size": 32, "model.head": "v2p"}
    values["pose.input_size"] = [64, 96]
    command = exp_run_command(values)
    assert command.startswith("dvc exp run train -S pose.lr=1.0e-05 ")
    assert command_overrides(command) == values  # with a YAML 1.1 reader too (1e-05 would be a string)


def test_only_a_trial_that_ran_every_epoch_can_win():
    rows = [
        TrialRow("a", {}, [0.5, 0.4], status="completed"),
        TrialRow("b", {}, [0.1], status="stopped_early"),
        TrialRow("c", {}, [], status="error"),
        TrialRow("d", {}, [0.5, 0.3], status="completed"),
    ]
    assert [row.trial_id for row in rank(rows, "min")] == ["d", "a", "b", "c"]
    assert [row.trial_id for row in rank(rows, "max")] == ["a", "d", "b", "c"]


def test_the_sweep_folder_follows_what_the_sweep_finds():
    base = parse_params(json.loads(json.dumps(tiny_params())))
    moved = parse_params(json.loads(json.dumps(tiny_params(tune={"address": "auto", "max_failures": 3}))))
    other = parse_params(json.loads(json.dumps(tiny_params(pose={"lr_factor": 0.5}))))
    assert sweep_name(base) == sweep_name(moved) != sweep_name(other)


@pytest.mark.slow
@pytest.mark.timeout(SWEEP_TIMEOUT)
def test_a_local_ray_keeps_its_token_in_the_users_home(sweep):
    # Ray's default for a local cluster: token authentication, with a token it creates if missing
    token = sweep["home"] / ".ray" / "auth_token"
    assert token.is_file() and token.read_text().strip()
