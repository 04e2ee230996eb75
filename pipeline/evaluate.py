"""evaluate stage: the task's metrics on the val split, beside a trivial baseline.

Writes ``reports/metrics.json``, ``reports/predictions/`` and ``reports/figures/``.
"""

from __future__ import annotations

import shutil

from hrnet.io import atomic_write_json, replace_directory
from hrnet.process import run_program
from hrnet.tasks import TASKS
from pipeline.common import METRICS_FILE, PREPARED_DIR, REPORTS_DIR, run_stage
from pipeline.params import Params

# Lightning (with torch) is imported in evaluate(): bad params are refused before it loads (pipeline.train)


def evaluate(params: Params) -> None:
    """Under DDP (``evaluate.devices`` > 1) every rank runs this; each writes its shard's outputs
    into one staging folder, and rank 0 moves them into place and writes the metrics."""
    task = TASKS[params.task]
    from pytorch_lightning.utilities.rank_zero import rank_zero_only

    from pipeline.common.checkpoints import load_module

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
    run_program(main)
