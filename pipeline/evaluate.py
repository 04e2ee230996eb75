"""evaluate stage: the task's metrics on the val split, beside a trivial baseline.

Writes ``reports/metrics.json``, ``reports/predictions/`` and ``reports/figures/``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytorch_lightning as pl

from hrnet.config import Params
from hrnet.io import atomic_write_json, replace_directory
from pipeline.common import CHECKPOINT, METRICS_FILE, PREPARED_DIR, REPORTS_DIR, run_stage
from pipeline.tasks import get_task


def load_module(params: Params, checkpoint: Path = CHECKPOINT) -> pl.LightningModule:
    """The trained module, loaded without unpickling anything but tensors and plain values."""
    if not checkpoint.is_file():
        raise FileNotFoundError(f"{checkpoint}: no trained model; run the train stage first")
    module_class = get_task(params.task).MODULE
    module = module_class.load_from_checkpoint(checkpoint, map_location="cpu", weights_only=True)
    return module.eval()


def evaluate(params: Params) -> None:
    task = get_task(params.task)
    module = load_module(params)
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".evaluate.", dir=REPORTS_DIR) as tmp:
        metrics = task.evaluate(module, params, PREPARED_DIR, Path(tmp))
        for name in ("predictions", "figures"):
            (Path(tmp) / name).mkdir(exist_ok=True)
            replace_directory(Path(tmp) / name, REPORTS_DIR / name)
    atomic_write_json(METRICS_FILE, {"task": params.task, **metrics})


def main() -> None:
    run_stage(evaluate)


if __name__ == "__main__":
    main()
