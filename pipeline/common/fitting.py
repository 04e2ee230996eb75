"""Fitting as the train stage does it, shared by the train stage, every tune trial and the person
detector: the seeded DataModule and module, the Trainer and the atomic checkpoint write."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, LearningRateMonitor

from hrnet.tasks import TASKS
from pipeline.common import RUN_KEY
from pipeline.divergence import StopOnDivergence
from pipeline.params import Params


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


class EpochCheckpoint(Callback):
    """Writes a full, resumable checkpoint at the end of every epoch, atomically."""

    def __init__(self, path: Path, identity: dict[str, str]) -> None:
        self.path, self.identity = path, identity

    def on_save_checkpoint(self, trainer: pl.Trainer, module: pl.LightningModule, checkpoint: dict) -> None:
        # written at the end of an epoch: current_epoch is the (0-based) epoch just finished
        checkpoint[RUN_KEY] = {**self.identity, "epochs_done": trainer.current_epoch + 1}

    def on_train_epoch_end(self, trainer: pl.Trainer, module: pl.LightningModule) -> None:
        save_atomically(trainer, self.path)


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
        deterministic=train.deterministic_mode(params.task),
        use_distributed_sampler=False,  # the DataModules shard with hrnet.data.sampling.EpochSampler
        log_every_n_steps=10,
        limit_train_batches=train.limit_train_batches,
        check_val_every_n_epoch=train.check_val_every_n_epoch,
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
    if params.train.compile:
        module = torch.compile(module, backend=params.train.compile_backend)
    return datamodule, module
