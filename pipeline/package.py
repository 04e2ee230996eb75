"""package stage: exports the trained model with its params, metrics and model card to dist/.

The export (``package.format``: torch_export or onnx) is checked against the trained model on the
first ``package.check_images`` validation images; a difference above ``package.tolerance`` fails
the stage with one line and leaves dist/ as it was. With ``package.precision`` bf16 or int8 the
package is then scored on the val split against the fp32 model (pipeline.package_precision); a
drop above ``package.max_metric_drop`` fails the stage the same way.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from hrnet.errors import MissingFileError
from hrnet.process import run_program
from hrnet.tasks import TASKS
from pipeline.common import DIST_DIR, METRICS_FILE, PREPARED_DIR, run_stage
from pipeline.params import Params

# torch and Lightning are imported in package(): bad params are refused before they load (pipeline.train)

log = logging.getLogger("pipeline.package")


def package(params: Params, params_file: Path = Path("params.yaml")) -> Path:
    from hrnet.package import write_package
    from pipeline.common.checkpoints import load_module
    from pipeline.package_precision import calibration_images, score_and_place

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
    checks = task.check_inputs(params, PREPARED_DIR, module.model, settings.check_images)

    def write(out: Path, precision: str) -> Path:  # a PackageError (a UserError) is one line, exit 2
        calibration = None
        if precision == "int8":
            calibration = calibration_images(params, settings.calibration_images, module.model)
        return write_package(
            out,
            module.model,
            meta,
            params_file.read_text(),
            metrics,
            fmt=settings.format,
            check_images=checks,
            tolerance=settings.tolerance,
            precision=precision,
            calibration_images=calibration,
        )

    target = DIST_DIR / name
    if settings.precision == "fp32":
        out = write(target, "fp32")
    else:  # scored on val first; a drop above max_metric_drop leaves an fp32 package in dist/<name>
        candidate = write(target.with_name(f".{name}.candidate"), settings.precision)
        out = score_and_place(params, candidate, target, module.model, lambda: write(target, "fp32"))
    log.info("packaged %s", out)
    return out


def main() -> None:
    run_stage(package)


if __name__ == "__main__":
    run_program(main)
