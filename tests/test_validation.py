"""Validation logs each task's metrics through the evaluators (pose: val/AP, not only val/loss)."""

from __future__ import annotations

import math
import warnings

import pytest
import pytorch_lightning as pl
import torch
from conftest import tiny_params

from hrnet.tasks import TASKS
from pipeline.common import PREPARED_DIR
from pipeline.params import parse_params
from pipeline.prepare import prepare
from pipeline.synthesize import synthesize


def _validate(module: pl.LightningModule, datamodule: pl.LightningDataModule) -> dict[str, float]:
    trainer = pl.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
        use_distributed_sampler=False,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.validate(module, datamodule=datamodule, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_pose_validation_logs_keypoint_ap_and_a_per_sample_loss(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    params = parse_params(tiny_params(task="pose", pose={"eval_batch_size": 4}))
    synthesize(params)
    prepare(params)
    torch.manual_seed(0)
    task = TASKS["pose"]
    module, datamodule = (
        task.build_module(params, PREPARED_DIR).eval(),
        task.build_datamodule(params, PREPARED_DIR),
    )
    logged = _validate(module, datamodule)
    assert {"val/AP", "val/AP50", "val/AR", "val/loss"} <= set(logged)
    assert 0.0 <= logged["val/AP"] <= 1.0 and logged["val/AP"] == module.last_val_metrics["AP"]

    # val/loss weighs every sample once: batches of 4, 4 and 2, not a mean of the batch means
    dataset = datamodule.val_dataset
    assert len(dataset) % 4, "the split must end in a smaller batch"
    with torch.no_grad():
        per_sample = [
            float(module.criterion(module(s["image"][None]), s["target"][None], s["target_weight"][None]))
            for s in (dataset[i] for i in range(len(dataset)))
        ]
    assert logged["val/loss"] == pytest.approx(sum(per_sample) / len(per_sample), rel=1e-5)
    assert math.isfinite(logged["val/loss"])
