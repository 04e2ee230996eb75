"""train stage: fits the task's LightningModule on the prepared data; writes models/model.ckpt."""

from __future__ import annotations

import os
from typing import Any

import pytorch_lightning as pl
from dvclive.lightning import DVCLiveLogger
from pytorch_lightning.callbacks import LearningRateMonitor

from hrnet.config import Params
from pipeline.common import CHECKPOINT, PREPARED_DIR, run_stage
from pipeline.tasks import get_task


def build_trainer(params: Params, logger: pl.loggers.Logger | bool = False, **overrides: Any) -> pl.Trainer:
    train = params.train
    options: dict[str, Any] = dict(
        max_epochs=train.epochs,
        accelerator=train.accelerator,
        devices=train.devices,
        precision=train.precision,
        logger=logger,
        callbacks=[LearningRateMonitor(logging_interval="epoch")] if logger else [],
        enable_checkpointing=False,
        deterministic=True,
        log_every_n_steps=10,
        limit_train_batches=train.limit_train_batches,
        enable_model_summary=False,
    )
    options.update(overrides)
    return pl.Trainer(**options)


def train(params: Params) -> None:
    pl.seed_everything(params.seed, workers=True)
    task = get_task(params.task)
    datamodule = task.build_datamodule(params, PREPARED_DIR)
    module = task.build_module(params)
    logger = DVCLiveLogger(dir="dvclive", save_dvc_exp=False, dvcyaml=None, report=None)
    trainer = build_trainer(params, logger=logger)
    trainer.fit(module, datamodule=datamodule)
    CHECKPOINT.parent.mkdir(parents=True, exist_ok=True)
    tmp = CHECKPOINT.with_name(f".{CHECKPOINT.name}.tmp")
    trainer.save_checkpoint(tmp, weights_only=True)
    if trainer.is_global_zero:
        os.replace(tmp, CHECKPOINT)


def main() -> None:
    run_stage(train)


if __name__ == "__main__":
    main()
