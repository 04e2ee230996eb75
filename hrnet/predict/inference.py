"""What a task's packages do: export the trained network, load it back, predict on images, draw and
report the predictions. Each task gives one :class:`TaskInference` (``Task.inference()``); the
package writer, :class:`~hrnet.predict.api.ModelPackage` and ``hrnet predict`` call only these
methods, so they name no task. :class:`DenseInference` serves a network with one batch input and
one map output (pose heatmaps, segmentation logits): a ``torch.export`` program or an ONNX graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from hrnet.errors import PackageError
from hrnet.predict.export import batch_dim, check_record, export_onnx, fold_batchnorm, max_abs_diff, run_onnx
from hrnet.predict.runtime import OnnxRunner, TorchRunner

PROGRAM_FILE = "model.pt2"
SCRIPT_FILE = "model.pt"
ONNX_FILE = "model.onnx"
PROGRAM_FILES = (PROGRAM_FILE, SCRIPT_FILE, ONNX_FILE)
FORMATS = ("torch_export", "onnx")


class Package(Protocol):
    """What a task's inference uses of a loaded package (:class:`hrnet.predict.api.Package`)."""

    path: Path
    meta: dict[str, Any]
    model: Any
    batch_size: int
    inference: TaskInference

    @property
    def input_size(self) -> tuple[int, int]: ...

    @property
    def class_names(self) -> list[str]: ...

    def predict_batch(self, images: Sequence[np.ndarray], **options: Any) -> list[Any]: ...


def task_inference(task: str) -> TaskInference:
    """The packaged inference of the registered task ``task`` (what package.json's ``task`` names)."""
    from hrnet.registry import RegistryError
    from hrnet.tasks import TASKS

    try:
        return TASKS.get(task).inference()
    except RegistryError as exc:
        raise PackageError(f"package.json: task: {exc} (is the package's task installed?)") from None


def unknown_format(fmt: str) -> PackageError:
    return PackageError(f"package.format={fmt!r}: expected one of {', '.join(FORMATS)}")


def enforce_check(fields: dict[str, Any], tolerance: float) -> None:
    """Prints the packaging check and refuses an export that differs from the model beyond ``tolerance``."""
    check = fields.get("check")
    if check:
        print(f"package check: max abs diff {check['max_abs_diff']:.3g} ({check['against']})")
        if not check["max_abs_diff"] <= tolerance:
            raise PackageError(
                f"{fields['program']}: max abs diff {check['max_abs_diff']:.3g} against the PyTorch model "
                f"on {check['inputs']} exceeds the tolerance {tolerance:g} (package.tolerance)"
            )


class TaskInference:
    """A task's packaged inference. ``meta`` is the package's package.json."""

    title = "HRNet model"  # the model card's first line
    gives_boxes = False  # predictions are dicts of boxes, scores and labels (a detector for pose)
    # package.precision (hrnet.predict.quantize): what stays fp32 outside an int8 graph, why bf16 is
    # refused (None: it is not), and whether the program is the whole network (its outputs checkable)
    fp32_outside_graph: tuple[str, ...] = ()
    bf16_refusal: str | None = None
    program_is_whole_model = True

    # -- packaging -------------------------------------------------------------------------------
    def export(
        self, tmp: Path, model: nn.Module, meta: dict[str, Any], fmt: str, images: Any, tolerance: float
    ) -> dict[str, Any]:
        """Writes the model program into ``tmp``; returns the package.json fields describing it."""
        raise NotImplementedError

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        """The packaged network as a callable (what ``Package.model`` holds)."""
        raise NotImplementedError

    def input_description(self, meta: dict[str, Any]) -> str:
        raise NotImplementedError

    def model_call(self, meta: dict[str, Any]) -> str:
        """One line of Python calling ``package.model`` directly, for the model card."""
        raise NotImplementedError

    def usage(self, meta: dict[str, Any]) -> str:
        """One line of Python calling ``package.predict``, for the model card."""
        raise NotImplementedError

    # -- predicting ------------------------------------------------------------------------------
    def check_options(self, package: Package, options: dict[str, Any]) -> None:
        """Refuses, in one line, options this task cannot predict with (before any work)."""

    def predict(self, package: Package, images: Sequence[np.ndarray], **options: Any) -> list[Any]:
        """One prediction per RGB uint8 image."""
        raise NotImplementedError

    def predict_one(self, package: Package, image: np.ndarray, **options: Any) -> Any:
        """What ``package.predict(image)`` returns: by default the image's prediction."""
        return self.predict(package, [image], **options)[0]

    def results(self, package: Package, prediction: Any, image_id: int, name: str) -> list[dict[str, Any]]:
        """The prediction as COCO results records (results.json)."""
        raise NotImplementedError

    def draw(self, package: Package, image: np.ndarray, prediction: Any, threshold: float) -> np.ndarray:
        raise NotImplementedError

    def write_extra(self, package: Package, out_dir: Path, name: str, prediction: Any) -> str | None:
        """Writes files besides the drawing (e.g. a label PNG); returns the drawing's file name, or
        None for ``name`` itself."""
        return None


class DenseInference(TaskInference):
    """A network mapping a normalised batch (N, 3, H, W) at ``meta["input_size"]`` to one map."""

    def export(
        self, tmp: Path, model: nn.Module, meta: dict[str, Any], fmt: str, images: Any, tolerance: float
    ) -> dict[str, Any]:
        width, height = meta["input_size"]
        folded = fold_batchnorm(model)
        if fmt == "onnx":
            export_onnx(folded, torch.randn(2, 3, height, width), tmp / ONNX_FILE)
            fields: dict[str, Any] = {"program": ONNX_FILE, "runtime": "onnxruntime"}
            if images is not None:
                diff = max_abs_diff(model, run_onnx(tmp / ONNX_FILE, images.numpy()), images)
                fields["check"] = check_record(diff, tolerance, images, "onnxruntime vs the PyTorch model")
        elif fmt == "torch_export":
            program = export_program(folded, (width, height))
            torch.export.save(program, tmp / PROGRAM_FILE)
            fields = {"program": PROGRAM_FILE, "runtime": "torch_export"}
            if images is not None:
                diff = max_abs_diff(model, [TorchRunner(program.module())(images)], images)
                fields["check"] = check_record(
                    diff, tolerance, images, "exported program vs the PyTorch model"
                )
        else:
            raise unknown_format(fmt)
        enforce_check(fields, tolerance)
        return {**fields, "batchnorm_folded": True}

    def load(self, path: Path, meta: dict[str, Any]) -> Any:
        program = path / meta["program"]
        if meta["program"] == PROGRAM_FILE:  # a bf16 package runs its program under CPU autocast
            return TorchRunner(torch.export.load(program).module(), autocast=meta.get("precision") == "bf16")
        if meta["program"] == ONNX_FILE:
            return OnnxRunner(program)
        raise PackageError(f"{path / 'package.json'}: unknown program {meta['program']!r}")

    def input_description(self, meta: dict[str, Any]) -> str:
        width, height = meta["input_size"]
        return (
            f"a batch (N, 3, {height}, {width}) of RGB images, scaled to [0, 1] and normalised with the "
            "ImageNet mean and std"
        )

    def model_call(self, meta: dict[str, Any]) -> str:
        width, height = meta["input_size"]
        return (
            f"outputs = package.model(batch)                      # batch: (N, 3, {height}, {width}), any N"
        )


def export_program(model: nn.Module, input_size: tuple[int, int]) -> torch.export.ExportedProgram:
    """Exports ``model`` (eval mode) for inputs ``(N, 3, H, W)`` with a dynamic batch size."""
    width, height = input_size
    example = torch.randn(2, 3, height, width)
    return torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch_dim()},))


def chunks(n: int, size: int) -> list[slice]:
    """Slices covering ``range(n)`` in batches of ``size``."""
    return [slice(i, min(i + size, n)) for i in range(0, n, max(size, 1))]
