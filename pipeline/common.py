"""What every stage shares: params loading, seeding and one-line failures."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path

from hrnet.config import ConfigError, Params, load_params

PREPARED_DIR = Path("data/prepared")
MODELS_DIR = Path("models")
CHECKPOINT = MODELS_DIR / "model.ckpt"
LAST_CHECKPOINT = MODELS_DIR / "last.ckpt"  # resumable; kept across runs (a persistent DVC out)
REPORTS_DIR = Path("reports")
METRICS_FILE = REPORTS_DIR / "metrics.json"
DIST_DIR = Path("dist")

log = logging.getLogger("pipeline")

# Errors a user can fix (bad params, bad data, a missing file): shown as one line, exit code 2.
USER_ERRORS: tuple[type[BaseException], ...] = (ConfigError, FileNotFoundError, ValueError)


def run_stage(main: Callable[[Params], None], params_file: str | Path = "params.yaml") -> None:
    """Loads params and runs ``main``; a user error ends the process with one clear line."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        params = load_params(params_file)
        main(params)
    except USER_ERRORS as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
