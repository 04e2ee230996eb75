"""The trials of the tune stage: each one's params, budget and search space, and the fit it runs.

A trial fits the train stage's own LightningModule and DataModule (``setup_fit``, ``build_trainer``) with
``params.yaml`` plus its sampled values and the trial budget; a single-process trial reports to Tune
through Ray's Lightning callback, a DDP trial is a Ray Train run of ``workers_per_trial`` workers.
Everything a trial needs travels in a :class:`TrialSpec`, plain data that pickles to any node.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import ray
from ray import tune as ray_tune

from hrnet.errors import InputError, MissingFileError
from pipeline.common.fitting import build_trainer, setup_fit
from pipeline.params import ConfigError, Params, TaskSearch, parse_params

CHECKPOINT_NAME = "checkpoint.ckpt"
DDP_RUNS = "ddp_runs"  # inside the sweep's folder: each DDP trial's Ray Train run
NODE_ID = "node_id"  # reported by every single-process trial


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
        "train.check_val_every_n_epoch": 1,  # the scheduler's time unit is a validation's report
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
            raise MissingFileError(
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
            raise InputError(f"tune metric {self.metric!r} is not logged by the module (logged: {logged})")


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
    report = RayTrainReportCallback()
    trainer = build_trainer(
        params,
        devices="auto",
        strategy=RayDDPStrategy(),
        plugins=[RayLightningEnvironment()],
        callbacks=[_RequireMetric(spec.metric), report],
        enable_progress_bar=False,
    )
    trainer = prepare_trainer(trainer)
    name = RayTrainReportCallback.CHECKPOINT_NAME
    try:
        with _checkpoint_file(ray.train.get_checkpoint(), name) as ckpt_path:
            trainer.fit(module, datamodule=datamodule, ckpt_path=ckpt_path, weights_only=True)
    finally:  # Ray's callback removes each epoch's folder, not their parent in the node's temp dir
        shutil.rmtree(report.tmpdir_prefix, ignore_errors=True)


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
