"""tune stage: a Ray Tune hyperparameter search on the prepared data; writes reports/tune.

Every trial fits the train stage's own LightningModule and DataModule (``get_task(...)`` and
``build_trainer``) with ``params.yaml`` plus its sampled values and the trial budget
(``tune.epochs``, ``tune.limit_train_batches``). ``tune.search.<task>`` (for ``params.task``) holds
the searched dotted params keys and the metric, which each trial reports after each validation
through Ray's Lightning integration; ASHA stops the weak trials early.

Ray (``pipeline.ray_cluster``): ``tune.address`` null starts a local Ray limited to
``tune.num_cpus`` (or joins ``RAY_ADDRESS``); ``auto``, ``host:port`` or ``ray://host:port`` joins
a running cluster, with Ray's authentication token where Ray finds one. Trial
results and checkpoints live under ``tune.storage_path`` (a path every node mounts, or a URI, on a
multi-node cluster), in a folder named after the sweep's params: rerunning an interrupted sweep
resumes it there; rerunning a finished one starts afresh.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs
import pytorch_lightning as pl
import ray
from ray import tune as ray_tune

from hrnet.config import ConfigError, Params, TaskSearch, TuneConfig, parse_params
from pipeline.common import PREPARED_DIR, REPORTS_DIR, run_stage
from pipeline.ray_cluster import is_uri, ray_session, resolve_storage
from pipeline.train import build_trainer, setup_fit
from pipeline.tune_report import TrialRow, rank, status_of, write_reports

log = logging.getLogger("pipeline.tune")

TUNE_DIR = REPORTS_DIR / "tune"
CHECKPOINT_NAME = "checkpoint.ckpt"
COMPLETE_MARKER = "hrnet_sweep_complete.json"
DDP_RUNS = "ddp_runs"  # inside the sweep's folder: each DDP trial's Ray Train run
NODE_ID = "node_id"  # reported by every single-process trial
HEAD_RESOURCE = "node:__internal_head__"  # every Ray cluster's head node has one
# tune.* keys that decide where and how fast a sweep runs, not what it finds
_PLACEMENT_KEYS = ("address", "storage_path", "num_cpus", "max_concurrent_trials", "max_failures")

Trainable = Callable[..., None]


# ----------------------------------------------------------------------------- trial params
def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    *parents, leaf = key.split(".")
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            raise ConfigError(f"tune search space: {key}: {part!r} is not a params section")
        node = child
    node[leaf] = value


def trial_budget(params: Params) -> dict[str, Any]:
    """The train.* values every trial runs with (dotted key -> value)."""
    tune = params.tune
    budget: dict[str, Any] = {
        "train.epochs": tune.epochs,
        "train.accelerator": "gpu" if tune.gpus_per_trial > 0 else "cpu",
    }
    if tune.workers_per_trial == 1:
        budget["train.devices"] = 1
    if "num_nodes" in type(params.train).model_fields:  # a trial's workers are placed by Ray
        budget["train.num_nodes"] = 1
    if tune.limit_train_batches is not None:
        budget["train.limit_train_batches"] = tune.limit_train_batches
    return budget


def changed(params: Params, values: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``values`` that differ from ``params`` (what a command line must set)."""
    raw = params.model_dump(mode="json")
    out = {}
    for key, value in values.items():
        node: Any = raw
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node != value:
            out[key] = value
    return out


@dataclass(frozen=True)
class TrialSpec:
    """What a trial needs besides its sampled values: plain data that pickles to any node."""

    base: dict[str, Any]  # params.yaml (JSON form) with the trial budget applied
    prepared_dir: str  # absolute: trials run in a worker whose cwd is not the project
    metric: str
    workers: int = 1
    cpus: float = 1.0
    gpus: float = 0.0
    storage_path: str | None = None  # DDP trials: where their Ray Train runs keep state

    def params(self, sampled: dict[str, Any]) -> Params:
        raw = json.loads(json.dumps(self.base))
        for key, value in sampled.items():
            set_dotted(raw, key, value)
        return parse_params(raw, "tune trial")

    def prepared(self) -> Path:
        path = Path(self.prepared_dir)
        if not path.is_dir():
            raise FileNotFoundError(
                f"{path}: prepared data not found on node {ray.util.get_node_ip_address()}; on a "
                "multi-node cluster run the sweep from a checkout every node mounts at the same path"
            )
        return path


def make_spec(params: Params, prepared_dir: Path, storage_path: str | None) -> TrialSpec:
    raw = params.model_dump(mode="json")
    for key, value in trial_budget(params).items():
        set_dotted(raw, key, value)
    tune = params.tune
    return TrialSpec(
        base=raw,
        prepared_dir=str(Path(prepared_dir).resolve()),
        metric=tune.for_task(params.task).metric,
        workers=tune.workers_per_trial,
        cpus=tune.cpus_per_trial,
        gpus=tune.gpus_per_trial,
        storage_path=storage_path,
    )


def search_space(search: TaskSearch) -> dict[str, Any]:
    space: dict[str, Any] = {}
    for dim in search.space:
        if dim.distribution == "choice":
            space[dim.param] = ray_tune.choice(list(dim.values or ()))
        elif dim.distribution == "loguniform":
            space[dim.param] = ray_tune.loguniform(dim.low, dim.high)
        elif dim.distribution == "uniform":
            space[dim.param] = ray_tune.uniform(dim.low, dim.high)
        else:
            space[dim.param] = ray_tune.randint(int(dim.low or 0), int(dim.high or 0))
    return space


def check_space(params: Params) -> None:
    """Every searched key exists and accepts its bounds or values: one clear line otherwise."""
    spec = make_spec(params, Path("."), None)
    where = f"tune.search.{params.task}.space"
    for dim in params.tune.for_task(params.task).space:
        if dim.distribution == "choice":
            candidates = list(dim.values or ())
        elif dim.distribution == "randint":
            candidates = [dim.low, int(dim.high or 0) - 1]
        else:
            candidates = [dim.low, dim.high]
        for value in candidates:
            try:
                spec.params({dim.param: value})
            except ConfigError as exc:
                detail = str(exc).removeprefix("tune trial: ")
                raise ConfigError(f"params.yaml: {where}: {dim.param}={value!r}: {detail}") from None


# ----------------------------------------------------------------------------- trials
class _RequireMetric(pl.Callback):
    """Fails a trial whose module does not log the tuned metric (instead of reporting nothing)."""

    def __init__(self, metric: str) -> None:
        self.metric = metric

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking and self.metric not in trainer.callback_metrics:
            logged = ", ".join(sorted(trainer.callback_metrics)) or "nothing"
            raise ValueError(f"tune metric {self.metric!r} is not logged by the module (logged: {logged})")


@contextlib.contextmanager
def _checkpoint_file(checkpoint: ray.tune.Checkpoint | None, name: str) -> Iterator[str | None]:
    if checkpoint is None:
        yield None
        return
    with checkpoint.as_directory() as directory:
        path = Path(directory) / name
        yield str(path) if path.is_file() else None


def _build(
    spec: TrialSpec, sampled: dict[str, Any]
) -> tuple[Params, pl.LightningDataModule, pl.LightningModule]:
    """A trial's params, DataModule and LightningModule, set up in the order ``train`` uses."""
    params = spec.params(sampled)
    return params, *setup_fit(params, spec.prepared())


def run_trial(config: dict[str, Any], spec: TrialSpec) -> None:
    """One single-process trial, in a Ray worker: the train stage's fit, reported after each epoch.

    Seeds and builds exactly as ``pipeline.train.train`` does, so a train run with the same params
    reproduces the trial's metric. A retried or resumed trial continues from its last checkpoint.
    """
    from ray.tune.integration.pytorch_lightning import TuneReportCheckpointCallback

    class ReportWithNode(TuneReportCheckpointCallback):
        """Adds the Ray node's ID: nodes of one machine share an IP, so node_ip cannot tell them apart."""

        def _get_report_dict(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> Any:
            report = super()._get_report_dict(trainer, pl_module)
            return report and {**report, NODE_ID: ray.get_runtime_context().get_node_id()}

    params, datamodule, module = _build(spec, config)
    report = ReportWithNode(metrics=[spec.metric], filename=CHECKPOINT_NAME, on="validation_end")
    trainer = build_trainer(
        params, callbacks=[_RequireMetric(spec.metric), report], enable_progress_bar=False
    )
    with _checkpoint_file(ray_tune.get_checkpoint(), CHECKPOINT_NAME) as ckpt_path:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)


def _ddp_worker(config: dict[str, Any]) -> None:
    """One DDP worker of a trial (Ray Train): the same fit, with Ray's Lightning strategy."""
    import ray.train
    from ray.train.lightning import (
        RayDDPStrategy,
        RayLightningEnvironment,
        RayTrainReportCallback,
        prepare_trainer,
    )

    spec = TrialSpec(**config["spec"])
    params, datamodule, module = _build(spec, config["sampled"])
    trainer = build_trainer(
        params,
        devices="auto",
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        callbacks=[_RequireMetric(spec.metric), RayTrainReportCallback()],
        enable_progress_bar=False,
    )
    trainer = prepare_trainer(trainer)
    name = RayTrainReportCallback.CHECKPOINT_NAME
    with _checkpoint_file(ray.train.get_checkpoint(), name) as ckpt_path:
        trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)


def run_ddp_trial(config: dict[str, Any], spec: TrialSpec) -> None:
    """One trial of ``spec.workers`` DDP workers: a Ray Train run driven from the Tune trial."""
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    context = ray_tune.get_context()
    resources = {"CPU": spec.cpus, **({"GPU": spec.gpus} if spec.gpus else {})}
    trainer = TorchTrainer(
        _ddp_worker,
        train_loop_config={"sampled": config, "spec": asdict(spec)},
        scaling_config=ray.train.ScalingConfig(
            num_workers=spec.workers, use_gpu=spec.gpus > 0, resources_per_worker=resources
        ),
        run_config=ray.train.RunConfig(
            name=context.get_trial_id(),
            storage_path=f"{spec.storage_path}/{context.get_experiment_name()}/{DDP_RUNS}",
            callbacks=[TuneReportCallback()],
        ),
    )
    trainer.fit()


# ----------------------------------------------------------------------------- storage
def _filesystem(path: str) -> tuple[pyarrow.fs.FileSystem, str]:
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
            raise ValueError("tune.searcher: optuna is not installed (pip install optuna)")
        from ray.tune.search.optuna import OptunaSearch

        return OptunaSearch(seed=params.seed)
    from ray.tune.search.basic_variant import BasicVariantGenerator

    return BasicVariantGenerator(random_state=params.seed)


def _trainable(params: Params, spec: TrialSpec, trial_fn: Trainable | None) -> Any:
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
    from ray.tune import CheckpointConfig, FailureConfig, RunConfig, Tuner

    tune = params.tune
    search = tune.for_task(params.task)
    check_space(params)
    # a checkpoint per epoch is what makes trials resumable; Tune's warning about it is noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    if not Path(prepared_dir).is_dir():
        raise FileNotFoundError(f"{prepared_dir}: no prepared data; run the prepare stage first")
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
                tune_config=ray_tune.TuneConfig(
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
    main()
