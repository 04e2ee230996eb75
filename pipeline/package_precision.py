"""The package stage's precision steps: int8 calibration inputs, and scoring the written package.

**Calibration.** int8 activation ranges come from ``package.calibration_images`` inputs of the
train split as the exported network sees them (the task's ``check_inputs`` on the train split).

**Scoring.** The package just written is loaded (through :func:`hrnet.load_package`, as a user
would) and put in the place of the trained network inside the evaluate stage's own module, whose
``evaluate`` then scores it on the val split with the evaluate stage's metric (the task's
``metric``: pose and detection COCO AP, segmentation mIoU; a mask framework's segm AP too, as its
masks come out of the packaged network as well). The fp32 PyTorch network is scored through the
same wrapper, so the two differ only by what the package changed. A drop above
``package.max_metric_drop`` points (metrics scaled to 0-100) in any of them refuses the package in
one line, and the fp32 package is written in its place (DVC has removed ``dist/`` before the stage
runs), so that the stage fails but ``dist/`` holds a usable package.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hrnet.errors import UserError
from hrnet.io import replace_directory, sha256_file
from hrnet.tasks import TASKS
from pipeline.common import PREPARED_DIR
from pipeline.params import Params

log = logging.getLogger("pipeline.package")


class MetricDropError(UserError, RuntimeError):
    """The packaged model scores too far below the fp32 model (one line, exit code 2)."""


def calibration_images(params: Params, count: int, model: nn.Module) -> torch.Tensor:
    """``count`` train inputs as the exported network sees them."""
    return TASKS[params.task].check_inputs(params, PREPARED_DIR, model, count, split="train")


class PackagedNetwork(nn.Module):
    """A package's network (or any callable) where the evaluate stage's module expects its own."""

    def __init__(self, run: Callable[[Any], Any], trained: nn.Module) -> None:
        super().__init__()
        self.run = run
        if hasattr(trained, "backbone"):  # the segmentation module reads backbone.config.align_corners
            self.backbone = trained.backbone  # settings only: forward never runs it
        # the detection module scores masks (segm AP) where its network says it produces them
        self.produces_masks = bool(getattr(trained, "produces_masks", False))

    def forward(self, images: Any) -> Any:
        return self.run(images)


def guarded(metric: str, metrics: dict[str, Any]) -> list[str]:
    """The metrics a package must keep: the task's, and its mask counterpart where the evaluate
    stage reports one (``segm_AP`` beside a mask framework's box ``AP``)."""
    return [name for name in (metric, f"segm_{metric}") if name in metrics]


def score(params: Params, network: Callable[[Any], Any]) -> dict[str, float]:
    """The guarded metrics (0-100) of ``network`` on the val split, as the evaluate stage computes
    them. Test-time settings kept inside a network (a detector's score threshold) were set before
    export, on both networks."""
    from pipeline.common.checkpoints import load_module

    task = TASKS[params.task]
    module = load_module(params)
    module.model = PackagedNetwork(network, module.model)
    with tempfile.TemporaryDirectory(prefix=".package_score.") as out:
        metrics = task.evaluate(module, params, PREPARED_DIR, Path(out))
    return {name: 100.0 * float(metrics[name]) for name in guarded(task.metric, metrics)}


def score_and_place(
    params: Params,
    candidate: Path,
    target: Path,
    fp32_network: nn.Module,
    write_fp32: Callable[[], Any],
) -> Path:
    """Scores the package written at ``candidate`` and the fp32 network; records both in its
    package.json (``metric``; a mask framework's segm AP in ``segm_metric``) and moves it to
    ``target``. A drop above ``package.max_metric_drop`` in any guarded metric is refused in one
    line after ``write_fp32()`` has put the fp32 package at ``target`` (DVC removes a stage's
    outputs before running it, so "the fp32 package stays" means writing it). ``candidate`` is
    gone either way."""
    from hrnet.package import SUMS_FILE, load_package

    try:
        package = load_package(candidate)
        packaged = score(params, package.model)
        fp32 = score(params, fp32_network.eval())
        limit = params.package.max_metric_drop
        for name, value in packaged.items():
            drop = fp32[name] - value
            log.info("package %s on val: %.2f (fp32 %.2f, drop %.2f)", name, value, fp32[name], drop)
            if drop > limit:
                shutil.rmtree(candidate, ignore_errors=True)
                write_fp32()
                raise MetricDropError(
                    f"package.precision={params.package.precision}: val {name} {value:.2f} is {drop:.2f} "
                    f"points below fp32's {fp32[name]:.2f}, more than package.max_metric_drop={limit:g}; "
                    f"{target} holds the fp32 package"
                )
        meta = json.loads((candidate / "package.json").read_text())
        for name, value in packaged.items():
            key = "segm_metric" if name.startswith("segm_") else "metric"
            record = {"split": "val", "scale": "0-100", "fp32": fp32[name], "packaged": value}
            meta[key] = {"name": name, **record}
        (candidate / "package.json").write_text(json.dumps(meta, indent=2) + "\n")
        sums = (candidate / SUMS_FILE).read_text().splitlines()
        fresh = [f"{sha256_file(candidate / line[66:])}  {line[66:]}" for line in sums]
        (candidate / SUMS_FILE).write_text("".join(f"{line}\n" for line in fresh))
        replace_directory(candidate, target)
    finally:
        shutil.rmtree(candidate, ignore_errors=True)
    return target
