"""Self-contained model packages: an exported program plus everything needed to trust and use it.

Layout of ``dist/<model-name>/``::

    model.pt2      torch.export program (dynamic batch); loads without this library's model code
                   (detection: model.pt, TorchScript, see below)
    model.onnx     instead of model.pt2 with ``package.format: onnx``; run with onnxruntime
                   (detection: backbone + neck, with head.onnx and for Faster R-CNN box_head.onnx;
                   box decoding and NMS run in torchvision, see hrnet.predict.onnx_detection)
    package.json   task, variant, head, input size, joints, preprocessing
    params.yaml    the params the model was trained with
    metrics.json   the evaluate stage's metrics
    README.md      model card
    SHA256SUMS     digest of every file above, checked by :func:`load_package`

torch.export is used rather than TorchScript: TorchScript is in maintenance mode, while an
exported program is the format torch's own deployment paths (AOTInductor, ExecuTorch) consume,
and it is loaded without unpickling arbitrary objects. Detectors are the exception: their
post-processing (NMS over a data-dependent number of boxes) does not export, while torchvision
keeps its detectors scriptable, so a detection package holds TorchScript: the HRNet feature
extractor traced, the torchvision detector around it scripted.

BatchNorm is folded into the convolutions before export. The exported model is run on real
validation images at packaging time and compared with the trained PyTorch model; the largest
absolute difference is stored in ``package.json`` (``check``) and must stay under the tolerance.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hrnet.errors import UserError
from hrnet.io import atomic_directory, sha256_file
from hrnet.predict.api import ModelPackage
from hrnet.predict.export import (
    batch_dim,
    check_record,
    export_detector_onnx,
    export_onnx,
    fold_batchnorm,
    max_abs_diff,
    run_onnx,
)
from hrnet.predict.runtime import OnnxRunner, TorchRunner

PACKAGE_FORMAT = 1
PROGRAM_FILE = "model.pt2"
SCRIPT_FILE = "model.pt"
ONNX_FILE = "model.onnx"
PROGRAM_FILES = (PROGRAM_FILE, SCRIPT_FILE, ONNX_FILE)
FORMATS = ("torch_export", "onnx")
DEFAULT_TOLERANCE = 1e-3
SUMS_FILE = "SHA256SUMS"


class PackageError(UserError, RuntimeError):
    """A package that is incomplete, tampered with or of an unknown format."""


def export_program(model: nn.Module, input_size: tuple[int, int]) -> torch.export.ExportedProgram:
    """Exports ``model`` (eval mode) for inputs ``(N, 3, H, W)`` with a dynamic batch size."""
    width, height = input_size
    example = torch.randn(2, 3, height, width)
    return torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch_dim()},))


def script_detector(detector: nn.Module, input_size: tuple[int, int]) -> torch.jit.ScriptModule:
    """TorchScript of a torchvision detector whose ``backbone`` is traced (HRNet's loops don't script)."""
    width, height = input_size
    detector = copy.deepcopy(detector).eval()
    with torch.no_grad():
        detector.backbone = torch.jit.trace(detector.backbone, torch.rand(1, 3, height, width), strict=False)
    return torch.jit.script(detector)


_TASK_TITLES = {
    "pose": "HRNet top-down human pose estimator",
    "segmentation": "HRNet semantic segmentation (Cityscapes train ids)",
    "detection": "HRNet-V2p detector",
}


def _input_description(meta: dict[str, Any]) -> str:
    width, height = meta["input_size"]
    if meta["task"] == "detection":
        resize = meta.get("resize") or {"min_size": height, "max_size": width}
        return (
            "a list of RGB images, each a (3, H, W) float tensor in [0, 1], of any size; the model "
            "normalises them and resizes each so that its shorter side is "
            f"{resize['min_size']} px and its longer side at most {resize['max_size']} px"
        )
    return (
        f"a batch (N, 3, {height}, {width}) of RGB crops, scaled to [0, 1] and normalised with the "
        "ImageNet mean and std"
    )


def _model_call(meta: dict[str, Any]) -> str:
    if meta["task"] == "detection":
        return "detections = package.model([image])            # image: (3, H, W) RGB in [0, 1]"
    width, height = meta["input_size"]
    return f"outputs = package.model(batch)                      # batch: (N, 3, {height}, {width}), any N"


def _model_card(meta: dict[str, Any], metrics: dict[str, Any]) -> str:
    rows = "\n".join(
        f"| {key} | {value:.4f} |" for key, value in metrics.items() if isinstance(value, int | float)
    )
    usage = ""
    if meta["task"] == "pose":
        usage = "keypoints, scores = package.predict(image_rgb, boxes=[[x, y, w, h]])  # image pixels\n"
    elif meta["task"] == "segmentation":
        usage = "train_ids = package.predict(image_rgb)  # (H, W) Cityscapes train ids\n"
    else:
        usage = "detections = package.predict(image_rgb)  # boxes (xyxy), scores, labels\n"
    return f"""# {meta["name"]}

{_TASK_TITLES.get(meta["task"], meta["task"])}.

| field | value |
|---|---|
| task | {meta["task"]} |
| backbone | {meta["model"]} |
| head | {meta["head"]} |
| input | {_input_description(meta)} |
| outputs | {meta.get("outputs", "")} |
| data | {meta["data"]} |

## Metrics (validation split)

| metric | value |
|---|---|
{rows}

## How to load

```python
import hrnet
package = hrnet.load_package("{meta["name"]}")      # verifies SHA256SUMS first
{_model_call(meta)}
{usage}```

On the command line: `hrnet predict --package DIR INPUT --out OUTDIR` (see the project README).
"""


def _export(
    tmp: Path, model: nn.Module, meta: dict[str, Any], fmt: str, images: torch.Tensor | None, tolerance: float
) -> dict[str, Any]:
    """Writes the model file into ``tmp``; returns the package.json fields describing it."""
    width, height = meta["input_size"]
    if meta["task"] == "detection":
        return _export_detector(tmp, model, (width, height), fmt, images, tolerance)
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
            fields["check"] = check_record(diff, tolerance, images, "exported program vs the PyTorch model")
    else:
        raise PackageError(f"package.format={fmt!r}: expected one of {', '.join(FORMATS)}")
    _enforce(fields, tolerance)
    return {**fields, "batchnorm_folded": True}


def _enforce(fields: dict[str, Any], tolerance: float) -> None:
    check = fields.get("check")
    if check:
        print(f"package check: max abs diff {check['max_abs_diff']:.3g} ({check['against']})")
        if not check["max_abs_diff"] <= tolerance:
            raise PackageError(
                f"{fields['program']}: max abs diff {check['max_abs_diff']:.3g} against the PyTorch model "
                f"on {check['inputs']} exceeds the tolerance {tolerance:g} (package.tolerance)"
            )


def _export_detector(
    tmp: Path,
    model: nn.Module,
    size: tuple[int, int],
    fmt: str,
    images: torch.Tensor | None,
    tolerance: float,
) -> dict[str, Any]:
    """TorchScript of the whole detector, or with onnx the ONNX graphs of its networks, whose
    outputs torchvision's own code decodes and NMSes (see hrnet.predict.onnx_detection)."""
    if fmt == "onnx":
        fields = export_detector_onnx(model, tmp, size, images, tolerance)
        _enforce(fields, tolerance)
        return fields
    if fmt != "torch_export":
        raise PackageError(f"package.format={fmt!r}: expected one of {', '.join(FORMATS)}")
    detector = copy.deepcopy(model).eval()
    detector.backbone = fold_batchnorm(detector.backbone)
    script_detector(detector, size).save(str(tmp / SCRIPT_FILE))
    return {"program": SCRIPT_FILE, "runtime": "torchscript", "batchnorm_folded": True}


def write_package(
    out_dir: str | Path,
    model: nn.Module,
    meta: dict[str, Any],
    params_text: str,
    metrics: dict[str, Any],
    *,
    fmt: str = "torch_export",
    check_images: torch.Tensor | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    precision: str = "fp32",
    calibration_images: torch.Tensor | list[torch.Tensor] | None = None,
) -> Path:
    """Writes a verified package to ``out_dir`` atomically (all files appear at once).

    ``check_images`` (N, 3, H, W), normalised validation inputs, are run through the export and
    the model; a difference above ``tolerance`` raises :class:`PackageError` and writes nothing.
    ``precision`` fp32, bf16 or int8 (ONNX, calibrated on ``calibration_images``, normalised train
    inputs): see :mod:`hrnet.predict.quantize`.
    """
    from hrnet.predict.quantize import apply_precision, plan_precision

    out_dir = Path(out_dir)
    model = model.eval()
    fmt, planned = plan_precision(precision, fmt, model, meta, check_images, calibration_images)
    with atomic_directory(out_dir) as tmp:
        fields = _export(tmp, model, meta, fmt, check_images, tolerance)
        fields = apply_precision(
            tmp, model, meta, fields, precision, check_images, calibration_images, planned
        )
        meta = {**meta, "format": PACKAGE_FORMAT, **fields}
        (tmp / "package.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "params.yaml").write_text(params_text)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "README.md").write_text(_model_card(meta, metrics))
        files = sorted(p.name for p in tmp.iterdir() if p.is_file())
        sums = "".join(f"{sha256_file(tmp / name)}  {name}\n" for name in files)
        (tmp / SUMS_FILE).write_text(sums)
    return out_dir


def verify_package(path: str | Path) -> dict[str, str]:
    """Checks every file listed in SHA256SUMS; raises :class:`PackageError` naming the first bad one."""
    path = Path(path)
    sums_file = path / SUMS_FILE
    if not sums_file.is_file():
        raise PackageError(f"{sums_file}: missing; refusing an unverifiable package")
    expected: dict[str, str] = {}
    for line_no, line in enumerate(sums_file.read_text().splitlines(), 1):
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or "/" in name or name.startswith("."):
            raise PackageError(f"{sums_file}:{line_no}: malformed line {line!r}")
        expected[name] = digest
    if "package.json" not in expected or not set(PROGRAM_FILES) & set(expected):
        raise PackageError(f"{sums_file}: does not list package.json and a model program")
    for name, digest in expected.items():
        file = path / name
        if not file.is_file():
            raise PackageError(f"{file}: listed in {SUMS_FILE} but missing")
        if sha256_file(file) != digest:
            raise PackageError(f"{file}: SHA-256 does not match {SUMS_FILE}; the file was modified")
    return expected


def load_package(path: str | Path, batch_size: int = 8) -> ModelPackage:
    """Loads a package written by :func:`write_package` after verifying its SHA256SUMS.

    ``batch_size`` is how many crops / images ``predict`` sends through the network at once.
    """
    path = Path(path)
    if not path.is_dir():
        raise PackageError(f"{path}: not a package directory")
    verify_package(path)
    meta = json.loads((path / "package.json").read_text())
    if meta.get("format") != PACKAGE_FORMAT:
        raise PackageError(f"{path / 'package.json'}: unknown package format {meta.get('format')!r}")
    program_file = path / meta["program"]
    model: Any
    if meta["task"] == "detection":
        import torchvision  # noqa: F401  (registers the torchvision::nms op the scripted detector calls)
    if meta["program"] == SCRIPT_FILE:
        model = _DetectionsOnly(torch.jit.load(str(program_file), map_location="cpu"))
    elif meta["program"] == PROGRAM_FILE:
        model = TorchRunner(
            torch.export.load(program_file).module(), autocast=meta.get("precision") == "bf16"
        )
    elif meta["program"] == ONNX_FILE and meta["task"] == "detection":
        from hrnet.predict.onnx_detection import load_detector

        if "onnx_graphs" not in meta:  # the features-only layout of earlier detection ONNX packages
            raise PackageError(f"{path / 'package.json'}: no onnx_graphs; re-run the package stage")
        model = load_detector(path, meta)
    elif meta["program"] == ONNX_FILE:
        model = OnnxRunner(program_file)
    else:
        raise PackageError(f"{path / 'package.json'}: unknown program {meta['program']!r}")
    return ModelPackage(path=path, meta=meta, model=model, batch_size=batch_size)


class _DetectionsOnly(nn.Module):
    """A scripted torchvision detector returns ``(losses, detections)``; callers want detections."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.scripted(images)[1]
