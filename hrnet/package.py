"""Self-contained model packages: an exported program plus everything needed to trust and use it.

Layout of ``dist/<model-name>/``::

    model.pt2      torch.export program (dynamic batch); loads without this library's model code
                   (detection: model.pt, TorchScript, see below)
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
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hrnet.io import atomic_directory, sha256_file

PACKAGE_FORMAT = 1
PROGRAM_FILE = "model.pt2"
SCRIPT_FILE = "model.pt"
SUMS_FILE = "SHA256SUMS"


class PackageError(RuntimeError):
    """A package that is incomplete, tampered with or of an unknown format."""


def export_program(model: nn.Module, input_size: tuple[int, int]) -> torch.export.ExportedProgram:
    """Exports ``model`` (eval mode) for inputs ``(N, 3, H, W)`` with a dynamic batch size."""
    width, height = input_size
    example = torch.randn(2, 3, height, width)
    batch = torch.export.Dim("batch", min=1, max=4096)
    return torch.export.export(model.eval(), (example,), dynamic_shapes=({0: batch},))


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


def _model_card(meta: dict[str, Any], metrics: dict[str, Any]) -> str:
    width, height = meta["input_size"]
    rows = "\n".join(
        f"| {key} | {value:.4f} |" for key, value in metrics.items() if isinstance(value, int | float)
    )
    usage = ""
    if meta["task"] == "pose":
        usage = (
            "keypoints, scores = package.predict(image_rgb, boxes=[[x, y, w, h]])  # image pixels\n"
        )
    return f"""# {meta["name"]}

{_TASK_TITLES.get(meta["task"], meta["task"])}.

| field | value |
|---|---|
| task | {meta["task"]} |
| backbone | {meta["model"]} |
| head | {meta["head"]} |
| input size | {height}x{width} (height x width) |
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
outputs = package.model(batch)                      # batch: (N, 3, {height}, {width}), any N
{usage}```

Inputs are RGB, scaled to [0, 1] and normalised with the ImageNet mean and std.
"""


def write_package(
    out_dir: str | Path,
    model: nn.Module,
    meta: dict[str, Any],
    params_text: str,
    metrics: dict[str, Any],
) -> Path:
    """Writes a verified package to ``out_dir`` atomically (all files appear at once)."""
    out_dir = Path(out_dir)
    input_size = tuple(meta["input_size"])
    scripted = meta["task"] == "detection"
    meta = {**meta, "format": PACKAGE_FORMAT, "program": SCRIPT_FILE if scripted else PROGRAM_FILE}
    with atomic_directory(out_dir) as tmp:
        if scripted:
            script_detector(model, input_size).save(str(tmp / SCRIPT_FILE))
        else:
            torch.export.save(export_program(model, input_size), tmp / PROGRAM_FILE)
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
    if "package.json" not in expected or not {PROGRAM_FILE, SCRIPT_FILE} & set(expected):
        raise PackageError(f"{sums_file}: does not list package.json and a model program")
    for name, digest in expected.items():
        file = path / name
        if not file.is_file():
            raise PackageError(f"{file}: listed in {SUMS_FILE} but missing")
        if sha256_file(file) != digest:
            raise PackageError(f"{file}: SHA-256 does not match {SUMS_FILE}; the file was modified")
    return expected


@dataclass
class ModelPackage:
    """A loaded, verified package; ``predict`` serves pose packages."""

    path: Path
    meta: dict[str, Any]
    model: nn.Module

    @property
    def input_size(self) -> tuple[int, int]:
        width, height = self.meta["input_size"]
        return int(width), int(height)

    def predict(
        self,
        image_rgb: np.ndarray,
        boxes: Sequence[Sequence[float]] | None = None,
        flip_test: bool | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 17, 2) in image pixels and their scores (N, 17) for each ``[x, y, w, h]`` box."""
        from hrnet.inference import predict_image

        if self.meta["task"] != "pose":
            task = self.meta["task"]
            raise PackageError(f"{self.path}: predict() serves pose packages, this one is {task}")
        flip = self.meta.get("flip_test", True) if flip_test is None else flip_test
        return predict_image(self.model, image_rgb, boxes, self.input_size, flip_test=flip)


def load_package(path: str | Path) -> ModelPackage:
    """Loads a package written by :func:`write_package` after verifying its SHA256SUMS."""
    path = Path(path)
    if not path.is_dir():
        raise PackageError(f"{path}: not a package directory")
    verify_package(path)
    meta = json.loads((path / "package.json").read_text())
    if meta.get("format") != PACKAGE_FORMAT:
        raise PackageError(f"{path / 'package.json'}: unknown package format {meta.get('format')!r}")
    program_file = path / meta["program"]
    if meta["program"] == SCRIPT_FILE:
        model: nn.Module = _DetectionsOnly(torch.jit.load(str(program_file), map_location="cpu"))
    elif meta["program"] == PROGRAM_FILE:
        model = torch.export.load(program_file).module()
    else:
        raise PackageError(f"{path / 'package.json'}: unknown program {meta['program']!r}")
    return ModelPackage(path=path, meta=meta, model=model)


class _DetectionsOnly(nn.Module):
    """A scripted torchvision detector returns ``(losses, detections)``; callers want detections."""

    def __init__(self, scripted: torch.jit.ScriptModule) -> None:
        super().__init__()
        self.scripted = scripted

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.scripted(images)[1]
