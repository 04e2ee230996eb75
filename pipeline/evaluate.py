"""evaluate stage: the task's metrics on the val split, beside a trivial baseline.

Writes ``reports/metrics.json``, ``reports/predictions/`` and ``reports/figures/``.
"""

from __future__ import annotations

import pickle
import shutil
import zipfile
from pathlib import Path

import pytorch_lightning as pl
from pytorch_lightning.utilities.rank_zero import rank_zero_only

from hrnet.errors import MissingFileError
from hrnet.io import atomic_write_json, replace_directory
from hrnet.models.weights import CheckpointError
from pipeline.common import CHECKPOINT, METRICS_FILE, PREPARED_DIR, REPORTS_DIR, run_stage
from pipeline.params import Params
from pipeline.tasks import TASKS


def _first_useful_line(exc: BaseException) -> str:
    boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(boilerplate)]
    return (useful or lines or [type(exc).__name__])[0][:200]


def load_module(params: Params, checkpoint: Path = CHECKPOINT) -> pl.LightningModule:
    """The trained module, loaded without unpickling anything but tensors and plain values."""
    if not checkpoint.is_file():
        raise MissingFileError(f"{checkpoint}: no trained model; run the train stage first")
    if not zipfile.is_zipfile(checkpoint):
        raise CheckpointError(
            f"{checkpoint}: corrupt or truncated checkpoint: not a complete torch zip archive "
            "(expected a checkpoint written by the train stage; re-run it)"
        )
    module_class = TASKS[params.task].lightning_module
    try:
        # the trained weights are all in the checkpoint: never read model.pretrained again
        module = module_class.load_from_checkpoint(
            checkpoint, map_location="cpu", weights_only=True, pretrained=None
        )
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{checkpoint}: refusing to load a checkpoint that is not weights-only "
            f"({_first_useful_line(exc)}) (expected tensors and plain values, as the train stage writes)"
        ) from None
    except (RuntimeError, EOFError, OSError, KeyError, TypeError, ValueError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{checkpoint}: corrupt or incompatible checkpoint ({type(exc).__name__}: "
            f"{_first_useful_line(exc)}) (expected a checkpoint written by the train stage; re-run it)"
        ) from None
    return module.eval()


def evaluate(params: Params) -> None:
    """Under DDP (``evaluate.devices`` > 1) every rank runs this; each writes its shard's outputs
    into one staging folder, and rank 0 moves them into place and writes the metrics."""
    task = TASKS[params.task]
    module = load_module(params)
    staging = REPORTS_DIR / ".evaluate.staging"
    if rank_zero_only.rank == 0:  # the other ranks start when rank 0 validates, after this
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    try:
        metrics = task.evaluate(module, params, PREPARED_DIR, staging)
        if metrics is not None:  # rank 0
            for name in ("predictions", "figures"):
                (staging / name).mkdir(exist_ok=True)
                replace_directory(staging / name, REPORTS_DIR / name)
            atomic_write_json(METRICS_FILE, {"task": params.task, **metrics})
    finally:
        if rank_zero_only.rank == 0:
            shutil.rmtree(staging, ignore_errors=True)


def main() -> None:
    run_stage(evaluate)


if __name__ == "__main__":
    main()
