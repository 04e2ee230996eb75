"""package stage: exports the trained model with its params, metrics and model card to dist/."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hrnet.config import Params
from hrnet.package import write_package
from pipeline.common import DIST_DIR, METRICS_FILE, run_stage
from pipeline.evaluate import load_module
from pipeline.tasks import get_task

log = logging.getLogger("pipeline.package")


def package(params: Params, params_file: Path = Path("params.yaml")) -> Path:
    module = load_module(params)
    if not METRICS_FILE.is_file():
        raise FileNotFoundError(f"{METRICS_FILE}: no metrics; run the evaluate stage first")
    metrics = json.loads(METRICS_FILE.read_text())
    name = params.model_name
    meta = {
        "name": name,
        "task": params.task,
        "model": params.model.name,
        "head": params.model.head,
        "data": f"{params.data.source} ({params.data.root or 'embedded synthetic data'})",
        **get_task(params.task).package_meta(params),
    }
    out = write_package(DIST_DIR / name, module.model, meta, params_file.read_text(), metrics)
    log.info("packaged %s", out)
    return out


def main() -> None:
    run_stage(package)


if __name__ == "__main__":
    main()
