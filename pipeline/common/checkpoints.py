"""Loading the train stage's checkpoint as its task's LightningModule (evaluate and package)."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytorch_lightning as pl

from hrnet.errors import MissingFileError
from hrnet.models.weights import CheckpointError
from hrnet.tasks import TASKS
from pipeline.common import CHECKPOINT
from pipeline.params import Params


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
    module_class = TASKS[params.task].module_class()
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
