"""train stage: fits the task's LightningModule on the prepared data; writes models/model.ckpt.

The same command runs on one CPU, under ``torchrun`` or SLURM: Lightning's DDP strategy picks
up the cluster environment (ranks, world size, master address) from the launcher's variables.
At the end of every epoch ``models/last.ckpt`` is written (atomically). A rerun with the same
params and code resumes it when it is unfinished (killed, or ``train.epochs`` raised since);
a finished run, another architecture or changed params or code start from scratch, saying why.
So a forced rerun (``dvc repro -f``, ``dvc exp run -f``) trains again and writes every output.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from dvclive.lightning import DVCLiveLogger
from pytorch_lightning.callbacks import Callback, LearningRateMonitor
from pytorch_lightning.utilities import rank_zero_info, rank_zero_warn

from pipeline.common import CHECKPOINT, LAST_CHECKPOINT, PREPARED_DIR, TRAIN_CODE, run_stage
from pipeline.divergence import StopOnDivergence
from pipeline.params import Params
from pipeline.tasks import TASKS

log = logging.getLogger("pipeline.train")

RUN_KEY = "hrnet_run"  # where a checkpoint records which params and code produced it


def _code_digest() -> str:
    """Hash of the code that training runs: the same paths the train stage's DVC deps list."""
    project = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for entry in TRAIN_CODE:
        path = project / entry
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(file.relative_to(project).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def run_identity(params: Params) -> dict[str, str]:
    """What a resumable checkpoint must match: the architecture, plus every training input.

    ``train.epochs`` is left out so a finished run can be extended; evaluation, packaging and
    tuning settings do not change the weights.
    """
    training = params.model_dump(mode="json", include={"seed", "task", "model", "train", *TASKS})
    training["train"].pop("epochs")
    fingerprint = hashlib.sha256(json.dumps(training, sort_keys=True).encode() + _code_digest().encode())
    return {
        "architecture": f"{params.task}/{params.model.name}/{params.model.head}",
        "fingerprint": fingerprint.hexdigest(),
    }


def resumable_checkpoint(path: Path, identity: dict[str, str], epochs: int) -> Path | None:
    """``path`` when it is an unfinished run of ``identity`` (fewer than ``epochs`` epochs done);
    otherwise None, with the reason logged."""
    if not path.is_file():
        return None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        recorded = checkpoint[RUN_KEY]
    except Exception as exc:  # a truncated or foreign file: report it, never load it
        rank_zero_warn(
            f"{path}: unreadable or foreign checkpoint ({type(exc).__name__}: {exc}); training from scratch"
        )
        return None
    if recorded.get("architecture") != identity["architecture"]:
        rank_zero_warn(
            f"refusing to resume from {path}: it holds {recorded.get('architecture')} but params ask for "
            f"{identity['architecture']}; training from scratch"
        )
        return None
    if recorded.get("fingerprint") != identity["fingerprint"]:
        rank_zero_info(f"not resuming from {path}: params or code changed since it was written")
        return None
    done = recorded.get("epochs_done")
    if not isinstance(done, int) or done >= epochs:
        rank_zero_info(
            f"not resuming from {path}: that run finished ({done} of {epochs} epochs done); training again"
        )
        return None
    rank_zero_info(f"resuming from {path} ({done} of {epochs} epochs done)")
    return path


class EpochCheckpoint(Callback):
    """Writes a full, resumable checkpoint at the end of every epoch, atomically."""

    def __init__(self, path: Path, identity: dict[str, str]) -> None:
        self.path, self.identity = path, identity

    def on_save_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict) -> None:
        # written at the end of an epoch: current_epoch is the (0-based) epoch just finished
        checkpoint[RUN_KEY] = {**self.identity, "epochs_done": trainer.current_epoch + 1}

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        save_atomically(trainer, self.path)


class SeedEachEpoch(Callback):
    """Seeds torch's global generator from (seed, epoch, rank) at the start of every training epoch.

    torchvision's detectors sample RPN and RoI training boxes with ``torch.randperm`` on the global
    generator; without this, a run resumed at epoch k would draw from a stream seeded at k, not the
    stream an uninterrupted run reaches there, and end with other weights.
    """

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def on_train_epoch_start(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        entropy = [self.seed, trainer.current_epoch, trainer.global_rank]
        torch.manual_seed(int(np.random.SeedSequence(entropy).generate_state(1)[0]))


def save_atomically(trainer: pl.Trainer, path: Path, weights_only: bool = False) -> None:
    """Every rank takes part in saving; rank 0 writes a temporary file and renames it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    trainer.save_checkpoint(tmp, weights_only=weights_only)
    if trainer.is_global_zero:
        os.replace(tmp, path)
    trainer.strategy.barrier("save_atomically")


def build_trainer(
    params: Params,
    logger: pl.loggers.Logger | bool = False,
    callbacks: list[Callback] | None = None,
    **overrides: Any,
) -> pl.Trainer:
    train = params.train
    strategy = train.strategy
    if strategy == "auto" and train.distributed:
        strategy = "ddp"  # subprocess launcher: also what torchrun and SLURM expect
    # a NaN/inf loss ends the run (pipeline.divergence); each epoch's random draws depend on its number only
    callbacks = [*(callbacks or []), StopOnDivergence(), SeedEachEpoch(params.seed)]
    options: dict[str, Any] = dict(
        max_epochs=train.epochs,
        accelerator=train.accelerator,
        devices=train.devices,
        num_nodes=train.num_nodes,
        strategy=strategy,
        precision=train.precision,
        sync_batchnorm=train.sync_batchnorm,
        accumulate_grad_batches=train.accumulate_grad_batches,
        gradient_clip_val=train.gradient_clip_val,
        logger=logger,
        callbacks=[*(callbacks or []), *([LearningRateMonitor(logging_interval="epoch")] if logger else [])],
        enable_checkpointing=False,
        deterministic=train.deterministic_mode,
        use_distributed_sampler=False,  # the DataModules shard with hrnet.data.sampling.EpochSampler
        log_every_n_steps=10,
        limit_train_batches=train.limit_train_batches,
        enable_model_summary=False,
    )
    options.update(overrides)
    return pl.Trainer(**options)


def setup_fit(params: Params, prepared_dir: Path) -> tuple[pl.LightningDataModule, pl.LightningModule]:
    """Seeded DataModule and (optionally compiled) LightningModule: what ``train`` and every tune trial fit.

    The order (matmul precision, seed, DataModule, module) fixes the initial weights, so a train
    run with a trial's params reproduces that trial.
    """
    torch.set_float32_matmul_precision(params.train.matmul_precision)
    pl.seed_everything(params.seed, workers=True, verbose=False)  # verbose prints once per rank
    task = TASKS[params.task]
    datamodule = task.build_datamodule(params, prepared_dir)
    module = task.build_module(params, prepared_dir)
    return datamodule, (torch.compile(module) if params.train.compile else module)


def train(params: Params) -> None:
    rank_zero_info(f"seed {params.seed}")
    datamodule, module = setup_fit(params, PREPARED_DIR)
    identity = run_identity(params)
    resume = resumable_checkpoint(LAST_CHECKPOINT, identity, params.train.epochs)
    logger = DVCLiveLogger(
        dir="dvclive", save_dvc_exp=False, dvcyaml=None, report=None, resume=resume is not None
    )
    trainer = build_trainer(params, logger=logger, callbacks=[EpochCheckpoint(LAST_CHECKPOINT, identity)])
    trainer.fit(module, datamodule=datamodule, ckpt_path=resume, weights_only=True)
    save_atomically(trainer, CHECKPOINT, weights_only=True)


def main() -> None:
    run_stage(train, uses_pretrained=True)


if __name__ == "__main__":
    main()
