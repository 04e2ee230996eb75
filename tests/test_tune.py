"""The tune stage: an ASHA sweep on tiny data, on a local Ray and on a running cluster."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from conftest import ROOT, project_env, tiny_params

from hrnet.config import ConfigError, parse_params
from pipeline.prepare import prepare
from pipeline.tune import check_space, run_sweep, run_trial, set_dotted, sweep_name
from pipeline.tune_report import (
    BEST_COMMAND,
    BEST_YAML,
    CURVES_PNG,
    TRIALS_CSV,
    TrialRow,
    exp_run_command,
    nest,
    rank,
)

METRIC = "val/loss"
EPOCHS = 3
FLAKY_TRIAL = "_00001"  # this trial's first attempt raises


def sweep_params(tmp: Path, **tune: Any) -> dict[str, Any]:
    space = [
        {"param": "pose.lr", "distribution": "loguniform", "low": 1e-4, "high": 3e-3},
        {"param": "pose.sigma", "distribution": "uniform", "low": 1.5, "high": 3.5},
    ]
    settings = {
        "search": {"pose": {"metric": METRIC, "mode": "min", "space": space}},
        "num_samples": 4,
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


def read_trials(out_dir: Path, name: str = TRIALS_CSV) -> list[dict[str, str]]:
    with open(out_dir / name, newline="") as handle:
        return list(csv.DictReader(handle))


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
    fixed = {"rank", "trial_id", "status", "iterations", "retries", "node_ip", "pid", "error"}
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
    """A trial function whose trial FLAKY_TRIAL raises on its first attempt (a marker file remembers)."""

    def flaky_trial(config: dict[str, Any], spec: Any) -> None:
        from ray import tune

        trial_id = tune.get_context().get_trial_id()
        marker = Path(marker_dir) / f"failed-{trial_id}"
        if trial_id.endswith(FLAKY_TRIAL) and not marker.exists():
            marker.write_text("")
            raise RuntimeError("injected fault: first attempt")
        run_trial(config, spec)

    return flaky_trial


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> dict[str, Any]:
    """One 4-trial ASHA sweep on a local Ray of 2 CPUs, with one trial failing once."""
    work = tmp_path_factory.mktemp("tune")
    raw = sweep_params(work)
    params = parse_params(raw)
    prepared = work / "data" / "prepared"
    cwd = os.getcwd()
    os.chdir(work)
    try:
        prepare(params)
    finally:
        os.chdir(cwd)
    (work / "markers").mkdir()
    out_dir = work / "reports" / "tune"
    started = time.monotonic()
    with pytest.MonkeyPatch.context() as env:
        env.delenv("RAY_ADDRESS", raising=False)  # address null: a Ray of our own
        winner, command = run_sweep(params, prepared, out_dir, trial_fn=make_flaky(str(work / "markers")))
    return {
        "work": work,
        "raw": raw,
        "out": out_dir,
        "winner": winner,
        "command": command,
        "seconds": time.monotonic() - started,
    }


@pytest.mark.slow
def test_asha_stops_weak_trials_and_best_yaml_holds_the_best_row(sweep):
    rows = read_trials(sweep["out"])
    assert len(rows) == 4
    iterations = [int(row["iterations"]) for row in rows]
    assert all(1 <= n <= EPOCHS for n in iterations)
    assert any(n < EPOCHS for n in iterations), f"ASHA stopped no trial: {iterations}"
    assert {row["status"] for row in rows} <= {"completed", "stopped_early"}

    best = rows[0]
    assert best["rank"] == "1" and best["status"] == "completed"
    finals = [float(row[f"{METRIC} final"]) for row in rows if row["status"] == "completed"]
    assert float(best[f"{METRIC} final"]) == min(finals)
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
def test_a_failing_trial_is_retried_and_reported(sweep):
    rows = read_trials(sweep["out"])
    flaky = [row for row in rows if row["trial_id"].endswith(FLAKY_TRIAL)]
    assert len(flaky) == 1
    assert flaky[0]["retries"] == "1"
    assert flaky[0]["status"] in {"completed", "stopped_early"} and not flaky[0]["error"]
    assert int(flaky[0]["iterations"]) >= 1
    assert all(row["retries"] == "0" for row in rows if row is not flaky[0])
    assert list((sweep["work"] / "markers").iterdir())  # the fault did fire


@pytest.mark.slow
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


# ----------------------------------------------------------------------------- a running cluster
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_cli() -> str:
    return str(Path(sys.executable).parent / "ray")


def start_node(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """``ray start ... --block``: ending this process (SIGTERM) stops exactly the node it started."""
    with open(log, "w") as handle:
        process = subprocess.Popen(
            [ray_cli(), "start", "--block", "--disable-usage-stats", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )
    deadline = time.monotonic() + 120
    while "Ray runtime started" not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_nodes([process])
            raise AssertionError(f"ray start failed:\n{log.read_text()}")
        time.sleep(0.5)
    return process


def stop_nodes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: only what it started
            process.wait(timeout=30)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A Ray head of 2 CPUs on 127.0.0.1 (later joined by a CPU-less node), and tiny prepared data.

    With token authentication, as Ray clusters have by default: the nodes and the stage, each
    started with ``RAY_AUTH_MODE=token``, share the user's token (~/.ray/auth_token, created if
    missing, as a local Ray does).
    """
    tmp = tmp_path_factory.mktemp("cluster")
    # Ray's socket paths must stay short: not under pytest's long tmp path
    temp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    port = free_port()
    env = {**project_env(), "RAY_AUTH_MODE": "token", "OMP_NUM_THREADS": "1"}
    env["RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S"] = "2"  # a throwaway cluster: no draining
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    env.pop("RAY_ADDRESS", None)
    subprocess.run([ray_cli(), "get-auth-token", "--generate"], check=True, capture_output=True, env=env)
    nodes: list[subprocess.Popen] = []
    head = [
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=2",
        "--num-gpus=0",
        "--include-dashboard=false",
        f"--temp-dir={temp}",
    ]
    try:
        nodes.append(start_node(head, tmp / "head.log", env))
        raw = sweep_params(tmp, address=f"127.0.0.1:{port}", num_cpus=None, max_concurrent_trials=None)
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            prepare(parse_params(raw))
        finally:
            os.chdir(cwd)
        yield {"raw": raw, "temp": temp, "nodes": nodes, "tmp": tmp, "env": env}
    finally:
        stop_nodes(nodes)
        shutil.rmtree(temp, ignore_errors=True)


# The stage runs in a process of its own, as `python -m pipeline.tune` does (and as Ray wants: its
# authentication settings are read once, when a process first uses Ray).
DRIVER = """
import shutil
import sys
from pathlib import Path
from pipeline.common import run_stage
from pipeline.tune import ray_session, resolve_storage, run_sweep
from test_tune import make_failing

params_file, out_dir, markers, attempts, runs, probe = sys.argv[1:]
trial_fn = make_failing(markers, int(attempts)) if int(attempts) else None

def main(params):
    if probe:  # refused where it is local to one machine, accepted where every node sees it
        with ray_session(params.tune):
            try:
                resolve_storage(None)
            except ValueError as exc:
                print("refused:", exc)
            print("storage:", resolve_storage(probe))
        return
    for run in range(int(runs)):  # a later run resumes what an earlier one left unfinished
        run_sweep(params, Path("data/prepared"), Path(out_dir), trial_fn=trial_fn)
        shutil.copy(Path(out_dir) / "trials.csv", Path(out_dir) / f"trials.run{run + 1}.csv")

run_stage(main, params_file)
"""


def drive(
    cluster: dict[str, Any], name: str, attempts: int = 0, runs: int = 1, probe: str = "", **tune: Any
) -> subprocess.CompletedProcess:
    """Runs the stage on the cluster with ``tune`` overrides; reports go to reports/<name>."""
    raw = json.loads(json.dumps(cluster["raw"]))
    raw["tune"].update(tune)
    params_file = cluster["tmp"] / f"{name}.params.json"
    params_file.write_text(json.dumps(raw))
    markers = cluster["tmp"] / f"{name}.markers"
    markers.mkdir(exist_ok=True)
    args = [str(params_file), f"reports/{name}", str(markers), str(attempts), str(runs), probe]
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        cwd=cluster["tmp"],
        env=cluster["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result


def make_failing(marker_dir: str, attempts: int):
    """A trial function whose trial FLAKY_TRIAL dies right after reporting, on its first ``attempts``
    attempts: each retry has to resume from the checkpoint of the epoch before."""

    def failing_trial(config: dict[str, Any], spec: Any) -> None:
        from ray import tune

        trial_id = tune.get_context().get_trial_id()
        failed = len(list(Path(marker_dir).glob(f"failed-{trial_id}-*")))
        if not trial_id.endswith(FLAKY_TRIAL) or failed >= attempts:
            run_trial(config, spec)
            return
        report = tune.report

        def report_then_die(*args: Any, **kwargs: Any) -> None:
            report(*args, **kwargs)
            (Path(marker_dir) / f"failed-{trial_id}-{failed}").write_text("")
            raise RuntimeError(f"injected fault: attempt {failed + 1}")

        tune.report = report_then_die  # what Ray's Lightning callback calls
        try:
            run_trial(config, spec)
        finally:
            tune.report = report

    return failing_trial


@pytest.mark.slow
def test_sweep_on_a_running_cluster_and_an_interrupted_sweep_resumes(cluster, monkeypatch):
    tmp = cluster["tmp"]
    out_dir = tmp / "reports" / "resume"

    # first run: trial FLAKY_TRIAL dies after epoch 1, is retried from that epoch's checkpoint and
    # dies again after epoch 2 (max_failures 1): the sweep ends with it errored. The second run
    # (same code; the fault has passed) resumes that sweep: only the failed trial runs again, from
    # its epoch-2 checkpoint.
    result = drive(cluster, "resume", attempts=2, runs=2, num_samples=2, epochs=EPOCHS, scheduler="fifo")
    first = {row["trial_id"]: row for row in read_trials(out_dir, "trials.run1.csv")}
    assert len(first) == 2
    [broken] = [row for row in first.values() if row["trial_id"].endswith(FLAKY_TRIAL)]
    [healthy] = [row for row in first.values() if row is not broken]
    assert broken["status"] == "error" and "injected fault: attempt 2" in broken["error"]
    assert broken["retries"] == "2" and broken["iterations"] == "2"
    assert healthy["status"] == "completed" and healthy["iterations"] == str(EPOCHS)

    assert result.stderr.count("resuming the interrupted sweep") == 1
    second = {row["trial_id"]: row for row in read_trials(out_dir)}
    assert set(second) == set(first)
    assert all(row["status"] == "completed" for row in second.values())
    assert all(row["iterations"] == str(EPOCHS) for row in second.values())
    assert second[healthy["trial_id"]]["pid"] == healthy["pid"]  # not rerun
    assert second[broken["trial_id"]]["pid"] != broken["pid"]

    # every trial ran in a worker process of that cluster
    logs = cluster["temp"] / "session_latest" / "logs"
    for row in second.values():
        assert list(logs.glob(f"worker-*-{row['pid']}.out")), f"no worker log of pid {row['pid']}"

    # resumed twice, the trial still ends where one uninterrupted train run does
    from pipeline.train import train

    raw = json.loads(json.dumps(cluster["raw"]))
    for key, value in row_config(second[broken["trial_id"]]).items():
        set_dotted(raw, key, value)
    raw["train"].update(epochs=EPOCHS, limit_train_batches=1)
    monkeypatch.chdir(tmp)
    with trial_threads():
        train(parse_params(raw))
    metrics = json.loads((tmp / "dvclive" / "metrics.json").read_text())
    resumed = float(second[broken["trial_id"]][f"{METRIC} final"])
    assert metrics["val"]["loss"] == pytest.approx(resumed, rel=1e-6, abs=1e-9)


@pytest.mark.slow
def test_ddp_trials_run_through_ray_train(cluster):
    result = drive(cluster, "ddp", num_samples=1, epochs=1, workers_per_trial=2, cpus_per_trial=1)
    [row] = read_trials(cluster["tmp"] / "reports" / "ddp")
    assert row["status"] == "completed" and row["iterations"] == "1"
    assert float(row[f"{METRIC} final"]) > 0
    command = (cluster["tmp"] / "reports" / "ddp" / BEST_COMMAND).read_text().strip()
    assert command.startswith("dvc exp run train -S pose.lr=") and command in result.stdout


@pytest.mark.slow
def test_a_multi_node_cluster_refuses_a_storage_path_local_to_one_machine(cluster):
    tmp = cluster["tmp"]
    address = cluster["raw"]["tune"]["address"]
    worker = [f"--address={address}", "--num-cpus=0", "--num-gpus=0"]
    cluster["nodes"].append(start_node(worker, tmp / "worker.log", cluster["env"]))

    shared = tmp / "shared"
    result = drive(cluster, "probe", probe=str(shared))
    [refused] = [line for line in result.stdout.splitlines() if line.startswith("refused:")]
    assert refused.startswith("refused: tune.storage_path: null keeps trial results on each machine")
    assert "the Ray cluster has 2 nodes" in refused
    # a path every node sees (both nodes share this machine's disk) passes the probe
    assert f"storage: {shared}" in result.stdout
