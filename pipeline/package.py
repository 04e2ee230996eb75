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

import torch

from hrnet.errors import MissingFileError
from hrnet.package import write_package
from pipeline.common import DIST_DIR, METRICS_FILE, PREPARED_DIR, run_stage
from pipeline.evaluate import load_module
from pipeline.package_precision import calibration_images, score_and_place
from pipeline.params import Params
from pipeline.tasks import TASKS

log = logging.getLogger("pipeline.package")


@torch.no_grad()
def check_images(params: Params, count: int, model: torch.nn.Module) -> torch.Tensor:
    """The first ``count`` val inputs as the network sees them (detection: resized, normalised and
    padded by the detector's own transform)."""
    datamodule = TASKS[params.task].build_datamodule(params, PREPARED_DIR)
    datamodule.setup("validate")
    images: list[torch.Tensor] = []
    for batch in datamodule.val_dataloader():
        if params.task == "detection":
            images += list(model.transform(batch[0][:count])[0].tensors)
            break  # later batches may be padded to another size
        else:
            images += list(batch["image"])
        if len(images) >= count:
            break
    if params.task == "detection":
        return torch.stack(images[:count])
    # the program's input size (segmentation validates on whole images, not crops)
    width, height = TASKS[params.task].package_meta(params, PREPARED_DIR)["input_size"]
    batch = torch.stack(
        [
            image
            if image.shape[-2:] == (height, width)
            else torch.nn.functional.interpolate(
                image[None], size=(height, width), mode="bilinear", align_corners=False
            )[0]
            for image in images[:count]
        ]
    )
    return batch


def package(params: Params, params_file: Path = Path("params.yaml")) -> Path:
    module = load_module(params)
    if params.task == "detection":  # the package keeps the boxes the evaluate stage scored
        module.set_score_threshold(params.evaluate.detection.score_threshold)
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
        **TASKS[params.task].package_meta(params, PREPARED_DIR),
    }
    settings = params.package
    checks = check_images(params, settings.check_images, module.model)

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
    main()
