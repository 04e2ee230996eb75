"""The tune stage on a Ray cluster started as the README shows: `ray start` on a head and a worker.

The cluster has Ray's default settings (token authentication, with the user's ~/.ray/auth_token; the
home folder is a temporary one) and the stage gets no environment beyond the user's own.
"""

from __future__ import annotations

import contextlib
import json
import os
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
import yaml
from conftest import ROOT, copy_project, project_env, tiny_params
from test_tune import EPOCHS, FLAKY_TRIAL, METRIC, row_config, sweep_params, trial_threads
from tune_helpers import read_trials

from pipeline.params import parse_params
from pipeline.tune_report import BEST_COMMAND
from pipeline.tune_trials import run_trial, set_dotted

# one worker runs every Ray test (module fixtures: one cluster, one sweep; no two Rays at once)
pytestmark = pytest.mark.slow  # one worker with test_tune.py (tests/conftest.py SHARED_WORKER_MODULES)
RAY_SETTINGS = ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_cli() -> str:
    return str(Path(sys.executable).parent / "ray")


def start_node(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    """``ray start --block ...`` in a session of its own: its process group is exactly that node."""
    with open(log, "w") as handle:
        return subprocess.Popen(
            [ray_cli(), "start", "--block", *args],
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def stop_nodes(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):  # whatever the node left in its group
            os.killpg(process.pid, signal.SIGKILL)


# the test's own view of the cluster, as Ray's documentation joins one: with RAY_AUTH_MODE=token
ALIVE_NODES = """
import json, sys, ray
ray.init(address=sys.argv[1])
print(json.dumps(sorted(n["NodeID"] for n in ray.nodes() if n["Alive"])))
"""


def alive_nodes(address: str, env: dict[str, str], cwd: Path) -> list[str]:
    """The IDs of the cluster's live nodes."""
    result = subprocess.run(
        [sys.executable, "-c", ALIVE_NODES, address],
        cwd=cwd,
        env={**env, "RAY_AUTH_MODE": "token"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def wait_for(nodes: list[subprocess.Popen], logs: list[Path], ready: Any, what: str) -> None:
    deadline = time.monotonic() + 150
    while not ready():
        dead = [log for node, log in zip(nodes, logs) if node.poll() is not None]
        if dead or time.monotonic() > deadline:
            raise AssertionError(f"{what}: " + "\n".join(log.read_text()[-3000:] for log in logs))
        time.sleep(1)


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A head and a worker of 1 CPU each, on this machine, set up as the README's cluster section.

    One CPU per node, so that two 1-CPU trials can only run one on each node. The project is a
    fresh copy with tiny params and ``dvc repro prepare`` done (README step 1).
    """
    tmp = tmp_path_factory.mktemp("cluster")
    home = tmp / "home"  # the user's home: ~/.ray/auth_token lives there
    home.mkdir()
    env = project_env()
    for name in RAY_SETTINGS:
        env.pop(name, None)
    env["HOME"] = str(home)
    project = copy_project(tmp / "project")
    (project / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    subprocess.run(["git", "commit", "-qam", "tiny"], cwd=project, check=True, env=env)
    subprocess.run(["dvc", "repro", "prepare"], cwd=project, check=True, env=env, capture_output=True)

    # README step 2: a token once, then the head, then each worker joining it
    subprocess.run([ray_cli(), "get-auth-token", "--generate"], check=True, capture_output=True, env=env)
    port = free_port()
    address = f"127.0.0.1:{port}"
    # Ray's socket paths must stay short: temp dirs not under pytest's long tmp path
    temps = [Path(tempfile.mkdtemp(prefix="rt", dir="/tmp")) for _ in range(2)]
    node_env = {**env, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "2"}  # a throwaway cluster: no draining
    quiet = ["--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"]
    head = ["--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--include-dashboard=false"]
    logs = [tmp / "head.log", tmp / "worker.log"]
    nodes: list[subprocess.Popen] = []
    try:
        nodes.append(start_node([*head, *quiet, f"--temp-dir={temps[0]}"], logs[0], node_env))
        wait_for(nodes, logs, lambda: listening(port), "the head did not start")
        worker = [f"--address={address}", *quiet, f"--temp-dir={temps[1]}"]
        nodes.append(start_node(worker, logs[1], {**node_env, "RAY_AUTH_MODE": "token"}))
        node_ids: list[str] = []

        def both_up() -> bool:
            node_ids[:] = alive_nodes(address, env, project)
            return len(node_ids) == 2

        wait_for(nodes, logs, both_up, "the worker did not join")
        raw = sweep_params(tmp, address=address, num_cpus=None, max_concurrent_trials=None)
        yield {
            "address": address,
            "env": env,
            "home": home,
            "project": project,
            "node_ids": node_ids,
            "nodes": nodes,
            "raw": raw,
            "tmp": tmp,
        }
    finally:
        stop_nodes(nodes)
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)


def dvc(
    cluster: dict[str, Any], *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["dvc", *args],
        cwd=cluster["project"],
        env=env or cluster["env"],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_readme_sweep_joins_the_cluster_and_runs_trials_on_both_nodes(cluster):
    shared = cluster["tmp"] / "shared" / "ray_results"  # both nodes share this machine's disk
    result = dvc(
        cluster,
        "exp", "run", "sweep/dvc.yaml", "-S", "on_demand.sweep=[run]",
        "-S", f"tune.address={cluster['address']}",
        "-S", f"tune.storage_path={shared}",
        "-S", "tune.scheduler=fifo",
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    rows = read_trials(cluster["project"] / "reports" / "tune")
    assert [row["status"] for row in rows] == ["completed", "completed"]
    assert sorted(row["node_id"] for row in rows) == cluster["node_ids"]  # one trial on each node


def test_without_a_token_the_stage_says_what_is_missing_and_where_ray_looks(cluster):
    home = cluster["tmp"] / "tokenless-home"  # a machine the head's token was not copied to
    home.mkdir()
    env = {**cluster["env"], "HOME": str(home)}
    out = cluster["project"] / "reports" / "tune"
    shutil.rmtree(out, ignore_errors=True)
    params = cluster["project"] / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["tune"]["address"] = cluster["address"]
    params.write_text(yaml.safe_dump(raw, sort_keys=False))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pipeline.tune"],
            cwd=cluster["project"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        subprocess.run(["git", "checkout", "params.yaml"], cwd=cluster["project"], check=True)
    assert result.returncode == 2, result.stderr[-3000:]
    line = result.stderr.strip().splitlines()[-1]
    missing = "the Ray cluster requires an authentication token and none was found here"
    assert line.startswith(f"error: tune.address {cluster['address']}: {missing}")
    assert "Traceback" not in result.stderr
    for where in ("RAY_AUTH_TOKEN,", "RAY_AUTH_TOKEN_PATH", str(home / ".ray" / "auth_token")):
        assert where in line
    assert not out.exists()


# The stage runs in a process of its own, as `python -m pipeline.tune` does (and as Ray wants: its
# authentication settings are read once, when a process first uses Ray).
DRIVER = """
import shutil
import sys
from pathlib import Path
from pipeline.common import run_stage
from pipeline.ray_cluster import ray_session, resolve_storage
from pipeline.tune import run_sweep
from test_ray_cluster import make_failing

params_file, out_dir, markers, attempts, run, probe = sys.argv[1:]
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
    run_sweep(params, Path("data/prepared"), Path(out_dir), trial_fn=trial_fn)
    shutil.copy(Path(out_dir) / "trials.csv", Path(out_dir) / f"trials.run{run}.csv")

run_stage(main, params_file)
"""


def drive(
    cluster: dict[str, Any], name: str, attempts: int = 0, run: int = 1, probe: str = "", **tune: Any
) -> subprocess.CompletedProcess:
    """Runs the stage's sweep on the cluster with ``tune`` overrides; reports go to reports/<name>,
    and a copy of its trials.csv to trials.run<run>.csv."""
    raw = json.loads(json.dumps(cluster["raw"]))
    raw["tune"].update(tune)
    params_file = cluster["tmp"] / f"{name}.params.json"
    params_file.write_text(json.dumps(raw))
    markers = cluster["tmp"] / f"{name}.markers"
    markers.mkdir(exist_ok=True)
    args = [str(params_file), f"reports/{name}", str(markers), str(attempts), str(run), probe]
    env = {**cluster["env"], "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")])}
    result = subprocess.run(
        [sys.executable, "-c", DRIVER, *args],
        cwd=cluster["project"],
        env=env,
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


def test_sweep_on_a_running_cluster_and_an_interrupted_sweep_resumes(cluster, monkeypatch):
    tmp = cluster["project"]
    out_dir = tmp / "reports" / "resume"

    # first run: trial FLAKY_TRIAL dies after epoch 1, is retried from that epoch's checkpoint and
    # dies again after epoch 2 (max_failures 1): the sweep ends with it errored. The second run
    # (same code; the fault has passed), a process of its own as a user's rerun of the stage is, resumes
    # that sweep: only the failed trial runs again, from its epoch-2 checkpoint.
    sweep = {"num_samples": 2, "epochs": EPOCHS, "scheduler": "fifo"}
    result = drive(cluster, "resume", attempts=2, run=1, **sweep)
    assert "resuming the interrupted sweep" not in result.stderr
    first = {row["trial_id"]: row for row in read_trials(out_dir, "trials.run1.csv")}
    assert len(first) == 2
    [broken] = [row for row in first.values() if row["trial_id"].endswith(FLAKY_TRIAL)]
    [healthy] = [row for row in first.values() if row is not broken]
    assert broken["status"] == "error" and "injected fault: attempt 2" in broken["error"]
    assert broken["retries"] == "2" and broken["iterations"] == "2"
    assert healthy["status"] == "completed" and healthy["iterations"] == str(EPOCHS)

    result = drive(cluster, "resume", attempts=2, run=2, **sweep)
    assert result.stderr.count("resuming the interrupted sweep") == 1
    second = {row["trial_id"]: row for row in read_trials(out_dir)}
    assert set(second) == set(first)
    assert all(row["status"] == "completed" for row in second.values())
    assert all(row["iterations"] == str(EPOCHS) for row in second.values())
    assert second[healthy["trial_id"]]["pid"] == healthy["pid"]  # not rerun
    assert second[broken["trial_id"]]["pid"] != broken["pid"]

    # every trial ran on a node of that cluster
    assert {row["node_id"] for row in second.values()} <= set(cluster["node_ids"])

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


def test_ddp_trials_run_through_ray_train(cluster):
    result = drive(cluster, "ddp", num_samples=1, epochs=1, workers_per_trial=2, cpus_per_trial=1)
    [row] = read_trials(cluster["project"] / "reports" / "ddp")
    assert row["status"] == "completed" and row["iterations"] == "1"
    # each worker's Lightning checkpoint folder is gone from the node's temp dir (this machine's)
    assert not list(Path(tempfile.gettempdir()).glob(f"lightning_checkpoints-*-name={row['trial_id']}-*"))
    assert float(row[f"{METRIC} final"]) > 0
    command = (cluster["project"] / "reports" / "ddp" / BEST_COMMAND).read_text().strip()
    assert command.startswith("dvc exp run train -S pose.lr=") and command in result.stdout


def test_a_multi_node_cluster_refuses_a_storage_path_local_to_one_machine(cluster):
    shared = cluster["tmp"] / "shared"
    result = drive(cluster, "probe", probe=str(shared))
    [refused] = [line for line in result.stdout.splitlines() if line.startswith("refused:")]
    assert refused.startswith("refused: tune.storage_path: null keeps trial results on each machine")
    assert "the Ray cluster has 2 nodes" in refused
    # a path every node sees (both nodes share this machine's disk) passes the probe
    assert f"storage: {shared}" in result.stdout
