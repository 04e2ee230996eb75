"""Detection ONNX export: a detector's networks as separate graphs, each checked against its module.

:func:`graph_modules` says which graphs a detector has (the layout, and how their outputs are decoded:
:mod:`hrnet.predict.onnx_detection`); each is a module whose ``forward`` takes the graph's inputs and
returns its outputs as a tuple. Everything between them (anchors, RoI pooling, box decoding, NMS,
mask pasting) is data dependent and stays in Python.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from hrnet.predict.export import check_record, export_graph, export_onnx, fold_batchnorm


def graph_file(name: str) -> str:
    """The file of graph ``name``: ``model.onnx`` for the backbone (the package's program), else
    ``<name>.onnx`` (``head``, ``box_head``, ``box_head_s1``, ``mask_head``, ...)."""
    return "model.onnx" if name == "backbone" else f"{name}.onnx"


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


class CenterNetMaps(nn.Module):
    """CenterNet's three heads on the level they read: heatmap logits, size, offset."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, level: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.detector.dense_maps(level)


class BoxHeadOutputs(nn.Module):
    """An R-CNN stage's box head + predictor: RoI-pooled features -> class logits, box deltas."""

    def __init__(self, box_head: nn.Module, predictor: nn.Module) -> None:
        super().__init__()
        self.box_head, self.predictor = box_head, predictor

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.predictor(self.box_head(pooled))


class MaskHeadOutputs(nn.Module):
    """The mask branches on RoI-pooled features: per branch its per-class mask logits (Mask R-CNN one;
    a cascade's every mask branch, HTC's mask information flow inside the graph)."""

    def __init__(self, roi_heads: nn.Module) -> None:
        super().__init__()
        self.roi_heads = roi_heads

    def forward(self, pooled: torch.Tensor) -> tuple[torch.Tensor, ...]:
        roi = self.roi_heads
        if hasattr(roi, "stages"):
            return tuple(roi.pooled_mask_logits(pooled, len(roi.stages) - 1, True))
        return (roi.mask_predictor(roi.mask_head(pooled)),)


def roi_stages(detector: nn.Module) -> list[nn.Module]:
    """The ``RoIHeads`` of an R-CNN: one, or a cascade's stages; none for a one-stage detector."""
    roi = getattr(detector, "roi_heads", None)
    if roi is None:
        return []
    return list(roi.stages) if hasattr(roi, "stages") else [roi]


def has_masks(detector: nn.Module) -> bool:
    return any(stage.has_mask() for stage in roi_stages(detector))


def graph_modules(detector: nn.Module) -> dict[str, nn.Module]:
    """Graph name -> the module it exports: ``backbone``; ``head`` (RPN, FCOS or CenterNet heads);
    per R-CNN box stage ``box_head`` (a cascade: ``box_head_s0``, ``_s1``, ``_s2``); ``mask_head``."""
    if hasattr(detector, "dense_maps"):
        head: nn.Module = CenterNetMaps(detector)
    else:
        head = DenseHeadOutputs(detector.rpn.head if hasattr(detector, "rpn") else detector.head)
    modules = {"backbone": FeatureLevels(detector.backbone), "head": head}
    stages = roi_stages(detector)
    for i, stage in enumerate(stages):
        name = "box_head" if len(stages) == 1 else f"box_head_s{i}"
        modules[name] = BoxHeadOutputs(stage.box_head, stage.box_predictor)
    if has_masks(detector):
        modules["mask_head"] = MaskHeadOutputs(detector.roi_heads)
    return modules


def _pools(detector: nn.Module) -> tuple[nn.Module, nn.Module | None]:
    """The box and mask RoI pools of an R-CNN."""
    first = roi_stages(detector)[0]
    return first.box_roi_pool, detector.roi_heads.mask_roi_pool


@torch.no_grad()
def graph_inputs(detector: nn.Module, images: torch.Tensor) -> dict[str, tuple[torch.Tensor, ...]]:
    """Per graph, the inputs ``detector`` itself gives it on ``images`` (padded, normalised): the
    levels, the level CenterNet reads, the RoIs the RPN proposes pooled for box and mask heads."""
    from torchvision.models.detection.image_list import ImageList

    features = detector.backbone(images)
    inputs: dict[str, tuple[torch.Tensor, ...]] = {"backbone": (images,)}
    if hasattr(detector, "dense_maps"):
        inputs["head"] = (features[detector.level],)
        return inputs
    inputs["head"] = tuple(features.values())
    stages = roi_stages(detector)
    if stages:
        batch = ImageList(images, [tuple(images.shape[-2:])] * len(images))
        proposals, _ = detector.rpn(batch, features)
        box_pool, mask_pool = _pools(detector)
        pooled = box_pool(features, proposals, batch.image_sizes)
        for name in graph_modules(detector):
            if name.startswith("box_head"):
                inputs[name] = (pooled,)
        if mask_pool is not None:
            inputs["mask_head"] = (mask_pool(features, proposals, batch.image_sizes),)
    return inputs


def _examples(detector: nn.Module, size: tuple[int, int]) -> dict[str, tuple[torch.Tensor, ...]]:
    """Export examples: random images large enough that no level is 1 px wide (the exporter would
    fix a size-1 dim to 1), their levels, and 8 random RoIs per RoI head."""
    height, width = (32 * max(-(-v // 32), 8) for v in size[::-1])
    images = torch.randn(2, 3, height, width)
    with torch.no_grad():
        features = detector.backbone(images)
    examples: dict[str, tuple[torch.Tensor, ...]] = {"backbone": (images,)}
    if hasattr(detector, "dense_maps"):
        examples["head"] = (features[detector.level],)
    else:
        examples["head"] = tuple(features.values())
    if roi_stages(detector):
        channels = int(detector.backbone.out_channels)
        box_pool, mask_pool = _pools(detector)
        for name in graph_modules(detector):
            if name.startswith("box_head"):
                examples[name] = (torch.randn(8, channels, *box_pool.output_size),)
        if mask_pool is not None:
            examples["mask_head"] = (torch.randn(8, channels, *mask_pool.output_size),)
    return examples


def export_detector_onnx(
    detector: nn.Module, out_dir: Path, size: tuple[int, int], images: torch.Tensor | None, tolerance: float
) -> dict[str, Any]:
    """Writes the ONNX graphs of ``detector`` (BatchNorm folded in the backbone) to ``out_dir``; returns
    the package.json fields. ``images``: padded, normalised validation batch the graphs are checked
    on against ``detector``."""
    from hrnet.predict.onnx_detection import detector_settings

    folded = copy.deepcopy(detector).eval()
    folded.backbone = fold_batchnorm(folded.backbone)
    modules, examples = graph_modules(folded), _examples(folded, size)
    free = torch.export.Dim.DYNAMIC
    boxes = torch.export.Dim("boxes", min=1, max=1 << 20)
    for name, module in modules.items():
        path = out_dir / graph_file(name)
        if name == "backbone":
            export_onnx(module, examples[name][0], path, dynamic_size=True)
        elif name == "head":  # each level (or CenterNet's one) free in batch, height and width
            shapes = tuple({0: free, 2: free, 3: free} for _ in examples[name])
            varargs = isinstance(module, DenseHeadOutputs)  # forward(*levels): one parameter
            export_graph(module, examples[name], path, (shapes,) if varargs else shapes)
        else:
            export_graph(module, examples[name], path, ({0: boxes},))
    graphs = {name: graph_file(name) for name in modules}
    fields: dict[str, Any] = {
        "program": graph_file("backbone"),
        "runtime": "onnxruntime (networks) + torchvision (box decoding, NMS)",
        "onnx_graphs": graphs,
        "detector": detector_settings(detector),
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


@torch.no_grad()
def detector_graph_diffs(
    detector: nn.Module, graphs: dict[str, Path], images: torch.Tensor
) -> dict[str, float]:
    """Per ONNX graph, its largest absolute difference from ``detector``'s own module on the inputs
    ``detector`` gives it on ``images`` (:func:`graph_inputs`). The mask heads are compared as the
    mask probabilities they give (the sigmoid of their logits, what torchvision pastes into the boxes
    by bilinear interpolation, so pasted masks at the same boxes differ by no more): the logits
    reach hundreds (measured 627 on an untrained W18-small), where float32 rounding alone is ~1e-4,
    while a probability differing by < 1e-3 flips a pixel only where the mask is within 1e-3 of 0.5."""
    from hrnet.predict.runtime import OnnxRunner

    detector = detector.eval()
    modules, inputs = graph_modules(detector), graph_inputs(detector, images)
    diffs: dict[str, float] = {}
    for name, path in graphs.items():
        expected = [torch.as_tensor(e) for e in modules[name](*inputs[name])]
        actual = [torch.from_numpy(np.asarray(a)) for a in OnnxRunner(path).run_many(inputs[name])]
        if len(expected) != len(actual):
            raise ValueError(f"{path}: {len(actual)} outputs, {len(expected)} from the PyTorch model")
        if name == "mask_head":
            expected, actual = [e.sigmoid() for e in expected], [a.sigmoid() for a in actual]
        diffs[name] = max(float((e - a).abs().max()) for e, a in zip(expected, actual))
    return diffs
