"""Self-contained model packages: an exported program plus everything needed to trust and use it.

Layout of ``dist/<model-name>/``::

    model.pt2      torch.export program (dynamic batch); loads without this library's model code
                   (detection: model.pt, TorchScript, see below)
    model.onnx     instead of model.pt2 with ``package.format: onnx``; run with onnxruntime
                   (detection: backbone + neck, with head.onnx, the R-CNNs' box_head*.onnx and
                   the mask frameworks' mask_head.onnx; box decoding and NMS run in Python, see
                   hrnet.predict.onnx_detection)
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

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from hrnet.errors import PackageError
from hrnet.io import atomic_directory, sha256_file
from hrnet.predict.api import ModelPackage
from hrnet.predict.inference import (
    FORMATS,
    ONNX_FILE,
    PROGRAM_FILE,
    PROGRAM_FILES,
    SCRIPT_FILE,
    TaskInference,
    task_inference,
)

__all__ = [
    "FORMATS",
    "ONNX_FILE",
    "PROGRAM_FILE",
    "SCRIPT_FILE",
    "PackageError",
    "load_package",
    "task_inference",
    "verify_package",
    "write_package",
]

PACKAGE_FORMAT = 1
DEFAULT_TOLERANCE = 1e-3
SUMS_FILE = "SHA256SUMS"


def _model_card(meta: dict[str, Any], metrics: dict[str, Any], inference: TaskInference) -> str:
    rows = "\n".join(
        f"| {key} | {value:.4f} |" for key, value in metrics.items() if isinstance(value, int | float)
    )
    return f"""# {meta["name"]}

{inference.title}.

| field | value |
|---|---|
| task | {meta["task"]} |
| backbone | {meta["model"]} |
| head | {meta["head"]} |
| input | {inference.input_description(meta)} |
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
{inference.model_call(meta)}
{inference.usage(meta)}
```

On the command line: `hrnet predict --package DIR INPUT --out OUTDIR` (see the project README).
"""


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

    ``meta["task"]`` names the registered task whose inference exports the model. ``check_images``
    (N, 3, H, W), normalised validation inputs, are run through the export and the model; a
    difference above ``tolerance`` raises :class:`PackageError` and writes nothing.
    ``precision`` fp32, bf16 or int8 (ONNX, calibrated on ``calibration_images``, normalised train
    inputs): see :mod:`hrnet.predict.quantize`.
    """
    from hrnet.predict.quantize import apply_precision, plan_precision

    out_dir = Path(out_dir)
    model = model.eval()
    inference = task_inference(meta["task"])
    fmt, planned = plan_precision(precision, fmt, model, meta, check_images, calibration_images, inference)
    with atomic_directory(out_dir) as tmp:
        fields = inference.export(tmp, model, meta, fmt, check_images, tolerance)
        fields = apply_precision(
            tmp, model, meta, fields, precision, check_images, calibration_images, planned, inference
        )
        meta = {**meta, "format": PACKAGE_FORMAT, **fields}
        (tmp / "package.json").write_text(json.dumps(meta, indent=2) + "\n")
        (tmp / "params.yaml").write_text(params_text)
        (tmp / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (tmp / "README.md").write_text(_model_card(meta, metrics, inference))
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
    inference = task_inference(meta.get("task", ""))
    model = inference.load(path, meta)
    return ModelPackage(path=path, meta=meta, model=model, batch_size=batch_size, inference=inference)
