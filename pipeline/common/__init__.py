"""What every stage shares: params loading, seeding and one-line failures."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from hrnet.errors import UserError
from pipeline.params import ConfigError, Params, load_params

PREPARED_DIR = Path("data/prepared")
MODELS_DIR = Path("models")
CHECKPOINT = MODELS_DIR / "model.ckpt"
LAST_CHECKPOINT = MODELS_DIR / "last.ckpt"  # resumable; kept across runs (a persistent DVC out)
RUN_KEY = "hrnet_run"  # where a last.ckpt records which params and code produced it (pipeline.train)
REPORTS_DIR = Path("reports")
METRICS_FILE = REPORTS_DIR / "metrics.json"
DIST_DIR = Path("dist")

# The code the train stage runs: its DVC deps (dvc.yaml) and what the resume fingerprint hashes.
# tests/test_stage_deps.py checks both against what a train run really imports.
TRAIN_CODE = (
    "hrnet/__init__.py",
    "hrnet/errors.py",
    "hrnet/process.py",
    "hrnet/io.py",
    "hrnet/codecs",
    "hrnet/data",
    "hrnet/evaluation",
    "hrnet/models",
    "hrnet/registry.py",
    "hrnet/tasks",
    "hrnet/viz.py",
    "pipeline/__init__.py",
    "pipeline/common",
    "pipeline/params",
    "pipeline/divergence.py",
    "pipeline/train.py",
)

log = logging.getLogger("pipeline")


def check_pretrained(params: Params) -> None:
    """``model.pretrained`` exists, holds only tensors and fits ``model.name``: else one line."""
    path = params.model.pretrained
    if path is None:
        return
    if not Path(path).is_file():
        raise ConfigError(f"model.pretrained: {path}: file not found (expected an HRNet checkpoint)")
    from hrnet.models import create_backbone  # torch: only once there is a file to read
    from hrnet.models.weights import CheckpointError

    try:
        create_backbone(params.model.name, head=params.model.head, pretrained=path)
    except CheckpointError as exc:
        lines = str(exc).splitlines()
        more = f" (+{len(lines) - 1} lines of detail: hrnet.load_pretrained)" if len(lines) > 1 else ""
        raise ConfigError(f"model.pretrained: {lines[0]}{more}") from None


def run_stage(
    main: Callable[[Params], None], params_file: str | Path = "params.yaml", *, uses_pretrained: bool = False
) -> None:
    """Loads params and runs ``main``; a user error ends the process with one clear line.

    ``uses_pretrained``: the stage builds models from ``model.pretrained``, checked before any work.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(params_file)
        if uses_pretrained:
            check_pretrained(params)
        main(params)
    except UserError as exc:  # one line, exit 2; any other error keeps its traceback
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
