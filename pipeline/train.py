"""train stage: fits the pose LightningModule on the prepared index; writes models/model.ckpt."""

from __future__ import annotations

import os

import pytorch_lightning as pl
from dvclive.lightning import DVCLiveLogger
from pytorch_lightning.callbacks import LearningRateMonitor

from hrnet.config import Params
from hrnet.tasks.pose import PoseEstimationModule
from pipeline.common import CHECKPOINT, MODELS_DIR, run_stage
from pipeline.datamodules import build_pose_datamodule


def build_module(params: Params) -> PoseEstimationModule:
    train = params.train
    return PoseEstimationModule(
        model_name=params.model.name,
        head=params.model.head,
        pretrained=params.model.pretrained,
        optimizer=train.optimizer,
        lr=train.lr,
        weight_decay=train.weight_decay,
        momentum=train.momentum,
        lr_milestones=tuple(train.lr_milestones),
        lr_factor=train.lr_factor,
    )


def build_trainer(params: Params, logger: pl.loggers.Logger | bool = False, **overrides) -> pl.Trainer:
    train = params.train
    options = dict(
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
    datamodule = build_pose_datamodule(params)
    module = build_module(params)
    logger = DVCLiveLogger(dir="dvclive", save_dvc_exp=False, dvcyaml=None, report=None)
    trainer = build_trainer(params, logger=logger)
    trainer.fit(module, datamodule=datamodule)
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    tmp = CHECKPOINT.with_name(f".{CHECKPOINT.name}.tmp")
    trainer.save_checkpoint(tmp, weights_only=True)
    if trainer.is_global_zero:
        os.replace(tmp, CHECKPOINT)


def main() -> None:
    run_stage(train)


if __name__ == "__main__":
    main()
