"""Model preparation for packages: BatchNorm folding, ONNX export and the export check.

Detectors export as several ONNX graphs, each checked against its PyTorch module:
:mod:`hrnet.predict.export_detection`.

Packaged models are inference-only, so every BatchNorm that follows a convolution is folded into
that convolution's weights and bias (``torch.nn.utils.fusion.fuse_conv_bn_eval``): one op less per
layer and the same outputs up to float rounding.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

ONNX_OPSET = 18


def fold_batchnorm(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval mode) with each Conv2d -> BatchNorm2d pair folded into the conv.

    The pairs are found by structure, not by tracing (the architecture variants' control flow does
    not trace with ``torch.fx``): adjacent children of an ``nn.Sequential``, and the ``convN`` /
    ``bnN`` attributes of the residual blocks and the stem, where ``bnN`` always follows ``convN``.
    The packaging check compares the result with the unfolded model.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        if isinstance(module, nn.Sequential):
            names = list(module._modules)
            pairs = list(zip(names, names[1:]))
        else:
            pairs = [(n, f"bn{n[4:]}") for n in module._modules if re.fullmatch(r"conv\d*", n)]
        for conv_name, bn_name in pairs:
            conv, bn = module._modules.get(conv_name), module._modules.get(bn_name)
            if type(conv) is nn.Conv2d and type(bn) is nn.BatchNorm2d and bn.track_running_stats:
                module._modules[conv_name] = fuse_conv_bn_eval(conv, bn)
                module._modules[bn_name] = nn.Identity()
    return folded


def count_batchnorms(model: nn.Module) -> int:
    return sum(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


def batch_dim() -> torch.export.Dim:
    return torch.export.Dim("batch", min=1, max=4096)


def export_onnx(
    model: nn.Module, example: torch.Tensor, path: str | Path, dynamic_size: bool = False
) -> None:
    """Writes ``model`` as ONNX (torch's exporter, dynamic batch) to ``path``.

    ``dynamic_size`` also leaves height and width free (multiples of 32), as detection needs.
    """
    dims: dict[int, Any] = {0: batch_dim()}
    if dynamic_size:
        dims[2] = 32 * torch.export.Dim("h32", min=1, max=1024)
        dims[3] = 32 * torch.export.Dim("w32", min=1, max=1024)
    export_graph(model, (example,), path, (dims,))


def export_graph(model: nn.Module, args: tuple[Any, ...], path: str | Path, dynamic_shapes: Any) -> None:
    """torch's dynamo-based ONNX exporter, at the package opset, written to ``path``."""
    program = torch.onnx.export(
        model.eval(),
        args,
        dynamo=True,
        dynamic_shapes=dynamic_shapes,
        opset_version=ONNX_OPSET,
        verbose=False,
    )
    program.save(str(path))


def run_onnx(path: str | Path, images: np.ndarray) -> list[np.ndarray]:
    from hrnet.predict.runtime import OnnxRunner

    return OnnxRunner(path).run_all(images)


@torch.no_grad()
def max_abs_diff(reference: nn.Module, outputs: Sequence[Any], images: torch.Tensor) -> float:
    """Largest absolute difference between the outputs of ``reference(images)`` and ``outputs``."""
    expected = reference.eval()(images)
    if isinstance(expected, dict):
        expected = tuple(expected.values())
    if isinstance(expected, torch.Tensor):
        expected = (expected,)
    if len(expected) != len(outputs):
        raise ValueError(f"{len(outputs)} exported outputs, {len(expected)} from the PyTorch model")
    return max(float((e - torch.as_tensor(np.asarray(a))).abs().max()) for e, a in zip(expected, outputs))


def check_record(diff: float, tolerance: float, images: torch.Tensor, against: str) -> dict[str, Any]:
    return {
        "against": against,
        "inputs": f"{len(images)} validation images {tuple(images.shape[1:])}",
        "max_abs_diff": diff,
        "tolerance": tolerance,
    }
