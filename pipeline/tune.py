"""tune stage: a Ray Tune hyperparameter search on the prepared data; writes reports/tune.

Every trial fits the train stage's own LightningModule and DataModule
(``pipeline.common.fitting.setup_fit`` and ``build_trainer``) with ``params.yaml`` plus its sampled
values and the trial budget (``tune.epochs``, ``tune.limit_train_batches``). ``tune.search.<task>``
(for ``params.task``) holds the searched dotted params keys and the metric, which each trial reports
after each validation through Ray's Lightning integration; ASHA stops the weak trials early.

Ray (``pipeline.ray_cluster``): ``tune.address`` null starts a local Ray limited to
``tune.num_cpus`` (or joins ``RAY_ADDRESS``); ``auto``, ``host:port`` or ``ray://host:port`` joins
a running cluster, with Ray's authentication token where Ray finds one. Trial
results and checkpoints live under ``tune.storage_path`` (a path every node mounts, or a URI, on a
multi-node cluster), in a folder named after the sweep's params: rerunning an interrupted sweep
resumes it there; rerunning a finished one starts afresh.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hrnet.errors import InputError, MissingFileError
from hrnet.process import run_program
from pipeline.common import PREPARED_DIR, REPORTS_DIR, run_stage
from pipeline.params import Params, TuneConfig

# Ray, pyarrow and the trial code (torch, Lightning) are imported where they are used: bad params are
# refused (run_stage) before the seconds they take to load
if TYPE_CHECKING:
    import pyarrow.fs

    from pipeline.tune_report import TrialRow
    from pipeline.tune_trials import TrialSpec

log = logging.getLogger("pipeline.tune")

TUNE_DIR = REPORTS_DIR / "tune"
COMPLETE_MARKER = "hrnet_sweep_complete.json"
HEAD_RESOURCE = "node:__internal_head__"  # every Ray cluster's head node has one
# tune.* keys that decide where and how fast a sweep runs, not what it finds
_PLACEMENT_KEYS = ("address", "storage_path", "num_cpus", "max_concurrent_trials", "max_failures")

Trainable = Callable[..., None]


# ----------------------------------------------------------------------------- storage
def _filesystem(path: str) -> tuple[pyarrow.fs.FileSystem, str]:
    import pyarrow.fs

    from pipeline.ray_cluster import is_uri

    if is_uri(path):
        return pyarrow.fs.FileSystem.from_uri(path)
    return pyarrow.fs.LocalFileSystem(), path.removeprefix("file://")


def sweep_name(params: Params) -> str:
    """A folder name that changes with every value that changes what the sweep finds."""
    raw = params.model_dump(mode="json")
    for key in ("evaluate", "package"):
        raw.pop(key, None)
    for key in _PLACEMENT_KEYS:
        raw["tune"].pop(key, None)
    raw["tune"]["search"] = raw["tune"]["search"][params.task]  # other tasks' searches do not matter
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
    return f"hrnet_tune_{params.task}_{digest[:12]}"


# ----------------------------------------------------------------------------- the sweep
def _scheduler(tune: TuneConfig) -> Any:
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler

    if tune.scheduler == "fifo":
        return FIFOScheduler()
    return ASHAScheduler(
        time_attr="training_iteration",
        max_t=tune.epochs,
        grace_period=tune.grace_period,
        reduction_factor=tune.reduction_factor,
    )


def _searcher(params: Params) -> Any:
    tune = params.tune
    if tune.searcher == "optuna":
        if importlib.util.find_spec("optuna") is None:
            raise InputError("tune.searcher: optuna is not installed (pip install optuna)")
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=params.seed)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=params.seed)


def _trainable(params: Params, spec: TrialSpec, trial_fn: Trainable | None) -> Any:
    from ray import tune as ray_tune

    from pipeline.tune_trials import run_ddp_trial, run_trial

    tune = params.tune
    if tune.workers_per_trial > 1:
        # the trial only drives its Ray Train run, whose workers hold the CPUs and GPUs: it asks
        # for a sliver of the head node (Ray's advice: keep drivers off the training nodes)
        fn = trial_fn or run_ddp_trial
        resources: dict[str, float] = {"cpu": 0, HEAD_RESOURCE: 0.001}
    else:
        fn = trial_fn or run_trial
        resources = {"cpu": tune.cpus_per_trial, "gpu": tune.gpus_per_trial}
    return ray_tune.with_resources(ray_tune.with_parameters(fn, spec=spec), resources)


def _rows(grid: Any, metric: str, max_t: int) -> list[TrialRow]:
    from ray.tune import ExperimentAnalysis

    from pipeline.tune_report import TrialRow, status_of
    from pipeline.tune_trials import NODE_ID

    failures: dict[str, Any] = {}
    try:
        analysis = ExperimentAnalysis(grid.experiment_path, storage_filesystem=grid.filesystem)
        failures = {Path(trial.path).name: trial for trial in analysis.trials}
    except Exception as exc:  # the report still has everything but the retry counts
        log.warning("could not read the trials' retry counts: %s", exc)
    rows = []
    for result in grid:
        frame = result.metrics_dataframe
        curve: list[float] = []
        if frame is not None and metric in frame:
            frame = frame.dropna(subset=[metric]).sort_values("training_iteration")
            curve = [float(v) for v in frame[metric]]
        metrics = result.metrics or {}
        trial = failures.get(Path(result.path).name)
        error = str(result.error).strip().splitlines()[-1][:300] if result.error else None
        rows.append(
            TrialRow(
                trial_id=trial.trial_id if trial else metrics.get("trial_id", Path(result.path).name),
                config=dict(result.config or {}),
                curve=curve,
                status=status_of(curve, result.error is not None, max_t),
                retries=trial.num_failures if trial else None,
                node_ip=metrics.get("node_ip"),
                node_id=metrics.get(NODE_ID),
                pid=metrics.get("pid"),
                error=error,
            )
        )
    return rows


def run_sweep(
    params: Params,
    prepared_dir: Path = PREPARED_DIR,
    out_dir: Path = TUNE_DIR,
    trial_fn: Trainable | None = None,
) -> tuple[TrialRow, str]:
    """Runs (or resumes) the sweep and writes ``out_dir``; returns the winner and its command.

    ``trial_fn(config, spec)`` replaces :func:`run_trial` (tests inject faults through it).
    """
    import pyarrow.fs
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, Tuner
    from ray.tune import TuneConfig as RayTuneConfig

    from pipeline.ray_cluster import ray_session, resolve_storage
    from pipeline.tune_report import rank, write_reports
    from pipeline.tune_trials import changed, check_space, make_spec, search_space, trial_budget

    tune = params.tune
    search = tune.for_task(params.task)
    check_space(params)
    # a checkpoint per epoch is what makes trials resumable; Tune's warning about it is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not Path(prepared_dir).is_dir():
        raise MissingFileError(f"{prepared_dir}: no prepared data; run the prepare stage first")
    name = sweep_name(params)
    with ray_session(tune):
        storage = resolve_storage(tune.storage_path)
        spec = make_spec(params, prepared_dir, storage)
        trainable = _trainable(params, spec, trial_fn)
        experiment = f"{storage.rstrip('/')}/{name}"
        fs, fs_path = _filesystem(experiment)
        marker = f"{fs_path}/{COMPLETE_MARKER}"
        if Tuner.can_restore(experiment) and fs.get_file_info(marker).type == pyarrow.fs.FileType.NotFound:
            log.info("resuming the interrupted sweep at %s", experiment)
            tuner = Tuner.restore(experiment, trainable=trainable, resume_errored=True)
        else:
            if fs.get_file_info(fs_path).type != pyarrow.fs.FileType.NotFound:
                log.info("starting afresh: removing the finished sweep at %s", experiment)
                fs.delete_dir(fs_path)
            log.info("sweep %s: %d trials of up to %d epochs", experiment, tune.num_samples, tune.epochs)
            tuner = Tuner(
                trainable,
                param_space=search_space(search),
                tune_config=RayTuneConfig(
                    metric=search.metric,
                    mode=search.mode,
                    num_samples=tune.num_samples,
                    scheduler=_scheduler(tune),
                    search_alg=_searcher(params),
                    max_concurrent_trials=tune.max_concurrent_trials,
                ),
                run_config=RunConfig(
                    name=name,
                    storage_path=storage,
                    failure_config=FailureConfig(max_failures=tune.max_failures),
                    checkpoint_config=CheckpointConfig(num_to_keep=1),
                    verbose=1,
                ),
            )
        grid = tuner.fit()
        rows = _rows(grid, search.metric, tune.epochs)
    ranked = rank(rows, search.mode)
    budget = trial_budget(params)
    if ranked and ranked[0].curve and ranked[0].iterations < tune.epochs:
        budget["train.epochs"] = ranked[0].iterations  # no trial ran every epoch: reproduce the best as is
    winner, command = write_reports(out_dir, rows, search.metric, search.mode, changed(params, budget))
    if all(row.status != "error" for row in rows):
        with fs.open_output_stream(marker) as stream:
            stream.write(json.dumps({"winner": winner.trial_id, "command": command}).encode())
    else:
        failed = sum(row.status == "error" for row in rows)
        log.warning("%d trial(s) failed: `dvc repro -f tune` resumes this sweep and retries them", failed)
    log.info("best of %d trials: %s %s = %r", len(rows), winner.trial_id, search.metric, winner.final)
    print(command)
    return winner, command


def tune_stage(params: Params) -> None:
    run_sweep(params)


def main() -> None:
    run_stage(tune_stage, uses_pretrained=True)


if __name__ == "__main__":
    run_program(main)
