"""package stage: exports the trained model with its params, metrics and model card to dist/.

The export (``package.format``: torch_export or onnx) is checked against the trained model on the
first ``package.check_images`` validation images; a difference above ``package.tolerance`` fails
the stage with one line and leaves dist/ as it was.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hrnet.errors import MissingFileError
from hrnet.package import write_package
from hrnet.tasks import TASKS
from pipeline.common import DIST_DIR, METRICS_FILE, PREPARED_DIR, run_stage
from pipeline.common.checkpoints import load_module
from pipeline.params import Params

log = logging.getLogger("pipeline.package")


def package(params: Params, params_file: Path = Path("params.yaml")) -> Path:
    task = TASKS[params.task]
    module = load_module(params)
    task.configure_test(module, params)
    if not METRICS_FILE.is_file():
        raise MissingFileError(f"{METRICS_FILE}: no metrics; run the evaluate stage first")
    metrics = json.loads(METRICS_FILE.read_text())
    name = params.model_name
    meta = {
        "name": name,
        "task": params.task,
        "model": params.model.name,
        "head": params.model.head,
        "data": f"{params.data.source} ({params.data.root or 'embedded synthetic data'})",
        **task.package_meta(params, PREPARED_DIR),
    }
    settings = params.package
    out = write_package(  # a PackageError (a UserError) is one line, exit code 2
        DIST_DIR / name,
        module.model,
        meta,
        params_file.read_text(),
        metrics,
        fmt=settings.format,
        check_images=task.check_inputs(params, PREPARED_DIR, module.model, settings.check_images),
        tolerance=settings.tolerance,
    )
    log.info("packaged %s", out)
    return out


def main() -> None:
    run_stage(package)


if __name__ == "__main__":
    main()
