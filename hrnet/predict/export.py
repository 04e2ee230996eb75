"""Model preparation for packages: BatchNorm folding, ONNX export and the export check.

Detectors export as several ONNX graphs (backbone + neck, dense head, the R-CNNs' box head, Mask
R-CNN's mask head),
each checked against its PyTorch module; see :mod:`hrnet.predict.onnx_detection` for the layout
and for how their outputs are decoded.

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


class FeatureLevels(nn.Module):
    """A detector's feature extractor (backbone + neck) with its levels as a tuple (ONNX outputs)."""

    def __init__(self, features: nn.Module) -> None:
        super().__init__()
        self.features = features

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.features(images).values())


class DenseHeadOutputs(nn.Module):
    """A detector's dense head (FCOS head or RPN head) on the levels as inputs, its raw outputs
    as a flat tuple: FCOS ``cls_logits, bbox_regression, bbox_ctrness``; RPN the objectness of
    every level, then the box deltas of every level."""

    def __init__(self, head: nn.Module) -> None:
        super().__init__()
        self.head = head

    def forward(self, *levels: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.head(list(levels))
        if isinstance(outputs, dict):
            return tuple(outputs.values())
        objectness, deltas = outputs
        return (*objectness, *deltas)


class BoxHeadOutputs(nn.Module):
    """Faster R-CNN's box head + predictor: RoI-pooled features -> class logits, box deltas."""

    def __init__(self, box_head: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.box_head, self.predictor = box_head, predictor

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictor(self.box_head(pooled))


class MaskHeadOutputs(nn.Module):
    """Mask R-CNN's mask head + predictor: RoI-pooled features -> per-class mask logits."""

    def __init__(self, mask_head: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.mask_head, self.predictor = mask_head, predictor

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.predictor(self.mask_head(pooled))


def export_detector_onnx(
    detector: nn.Module, out_dir: Path, size: tuple[int, int], images: torch.Tensor | None, tolerance: float
) -> dict[str, Any]:
    """Writes the ONNX graphs of a torchvision FCOS / Faster / Mask R-CNN (BatchNorm folded) to ``out_dir``
    (see :mod:`hrnet.predict.onnx_detection`); returns the package.json fields. ``images``: padded,
    normalised validation batch the graphs are checked on against ``detector``."""
    from hrnet.predict import onnx_detection as od

    folded = copy.deepcopy(detector).eval()
    folded.backbone = fold_batchnorm(folded.backbone)
    faster = hasattr(folded, "rpn")
    # examples large enough that no level is 1 px wide: the exporter would fix a size-1 dim to 1
    height, width = (32 * max(-(-v // 32), 8) for v in size[::-1])
    example = torch.randn(2, 3, height, width)
    graphs = {"backbone": od.BACKBONE_GRAPH, "head": od.HEAD_GRAPH}
    backbone = FeatureLevels(folded.backbone)
    export_onnx(backbone, example, out_dir / od.BACKBONE_GRAPH, dynamic_size=True)
    with torch.no_grad():
        levels = backbone(example)
    free = torch.export.Dim.DYNAMIC
    head = DenseHeadOutputs(folded.rpn.head if faster else folded.head)
    varargs = (tuple({0: free, 2: free, 3: free} for _ in levels),)  # forward(*levels): one parameter
    export_graph(head, levels, out_dir / od.HEAD_GRAPH, varargs)
    if faster:
        roi = folded.roi_heads
        pooled = torch.randn(8, int(folded.backbone.out_channels), *roi.box_roi_pool.output_size)
        boxes = torch.export.Dim("boxes", min=1, max=1 << 20)
        export_graph(
            BoxHeadOutputs(roi.box_head, roi.box_predictor),
            (pooled,),
            out_dir / od.BOX_HEAD_GRAPH,
            ({0: boxes},),
        )
        graphs["box_head"] = od.BOX_HEAD_GRAPH
        if roi.has_mask():
            size = roi.mask_roi_pool.output_size
            pooled = torch.randn(8, int(folded.backbone.out_channels), *size)
            export_graph(
                MaskHeadOutputs(roi.mask_head, roi.mask_predictor),
                (pooled,),
                out_dir / od.MASK_HEAD_GRAPH,
                ({0: boxes},),
            )
            graphs["mask_head"] = od.MASK_HEAD_GRAPH
    fields: dict[str, Any] = {
        "program": od.BACKBONE_GRAPH,
        "runtime": "onnxruntime (networks) + torchvision (box decoding, NMS)",
        "onnx_graphs": graphs,
        "detector": od.detector_settings(detector),
        "batchnorm_folded": True,
    }
    if images is not None:
        diffs = detector_graph_diffs(detector, {k: out_dir / v for k, v in graphs.items()}, images)
        fields["check"] = {
            **check_record(
                max(diffs.values()), tolerance, images, "onnxruntime vs the PyTorch detector's networks"
            ),
            "per_graph": diffs,
        }
    return fields


def _largest_diff(expected: Sequence[torch.Tensor], actual: Sequence[np.ndarray]) -> float:
    if len(expected) != len(actual):
        raise ValueError(f"{len(actual)} exported outputs, {len(expected)} from the PyTorch model")
    return max(float((e - torch.from_numpy(np.asarray(a))).abs().max()) for e, a in zip(expected, actual))


@torch.no_grad()
def detector_graph_diffs(
    detector: nn.Module, graphs: dict[str, Path], images: torch.Tensor
) -> dict[str, float]:
    """Per ONNX graph, its largest absolute difference from ``detector``'s own module on the same
    inputs: the backbone on ``images``, the head on the PyTorch levels, the box head (and the mask
    head) on the RoIs the PyTorch RPN proposes. The mask head is compared as the mask
    probabilities it gives (the sigmoid of its logits, what torchvision pastes into the boxes by
    bilinear interpolation, so pasted masks at the same boxes differ by no more): its logits reach
    hundreds (measured 627 on an untrained W18-small), where float32 rounding alone is ~1e-4, while
    a probability differing by < 1e-3 flips a pixel only where the mask is within 1e-3 of 0.5."""
    from torchvision.models.detection.image_list import ImageList

    from hrnet.predict.runtime import OnnxRunner

    detector = detector.eval()
    features = detector.backbone(images)
    levels = list(features.values())
    diffs = {"backbone": _largest_diff(levels, OnnxRunner(graphs["backbone"]).run_many([images]))}
    head = DenseHeadOutputs(detector.rpn.head if hasattr(detector, "rpn") else detector.head)
    diffs["head"] = _largest_diff(head(*levels), OnnxRunner(graphs["head"]).run_many(levels))
    if "box_head" in graphs:
        batch = ImageList(images, [tuple(images.shape[-2:])] * len(images))
        proposals, _ = detector.rpn(batch, features)
        roi = detector.roi_heads
        pooled = roi.box_roi_pool(features, proposals, batch.image_sizes)
        expected = BoxHeadOutputs(roi.box_head, roi.box_predictor)(pooled)
        diffs["box_head"] = _largest_diff(expected, OnnxRunner(graphs["box_head"]).run_many([pooled]))
    if "mask_head" in graphs:
        pooled = roi.mask_roi_pool(features, proposals, batch.image_sizes)
        expected = [MaskHeadOutputs(roi.mask_head, roi.mask_predictor)(pooled).sigmoid()]
        (logits,) = OnnxRunner(graphs["mask_head"]).run_many([pooled])
        diffs["mask_head"] = _largest_diff(expected, [torch.from_numpy(logits).sigmoid().numpy()])
    return diffs


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
