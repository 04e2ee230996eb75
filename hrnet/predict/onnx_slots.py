"""The ONNX graphs of a detection package in a detector's network slots (backbone, dense head, box and
mask predictors): modules that run a graph in onnxruntime and give what the slot's torch module gives.
:mod:`hrnet.predict.onnx_detection` says which graph holds what."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch
from torch import Tensor, nn

from hrnet.predict.runtime import OnnxRunner


def roi_pool(settings: dict[str, Any]) -> nn.Module:
    from torchvision.ops import MultiScaleRoIAlign

    return MultiScaleRoIAlign(
        settings["featmap_names"], settings["output_size"], settings["sampling_ratio"],
        canonical_scale=settings["canonical_scale"], canonical_level=settings["canonical_level"],
    )  # fmt: skip


class OnnxBackbone(nn.Module):
    """``model.onnx`` in a detector's backbone slot: image batch -> OrderedDict of levels."""

    def __init__(self, runner: OnnxRunner, out_channels: int) -> None:
        super().__init__()
        self.runner, self.out_channels = runner, out_channels

    def forward(self, images: Tensor) -> OrderedDict[str, Tensor]:
        levels = self.runner.run_many([images])
        return OrderedDict((str(i), torch.from_numpy(level)) for i, level in enumerate(levels))


class OnnxFcosHead(nn.Module):
    """``head.onnx`` in FCOS's head slot: levels -> the FCOSHead output dict."""

    def __init__(self, runner: OnnxRunner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, levels: list[Tensor]) -> dict[str, Tensor]:
        cls_logits, regression, ctrness = self.runner.run_many(levels)
        return {
            "cls_logits": torch.from_numpy(cls_logits),
            "bbox_regression": torch.from_numpy(regression),
            "bbox_ctrness": torch.from_numpy(ctrness),
        }


class OnnxRpnHead(nn.Module):
    """``head.onnx`` in the RPN's head slot: levels -> (objectness per level, deltas per level)."""

    def __init__(self, runner: OnnxRunner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, levels: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        outputs = [torch.from_numpy(o) for o in self.runner.run_many(levels)]
        return outputs[: len(levels)], outputs[len(levels) :]


class OnnxBoxPredictor(nn.Module):
    """``box_head.onnx`` (box head + predictor) in the RoI heads' predictor slot."""

    def __init__(self, runner: OnnxRunner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        if len(pooled) == 0:  # no proposal survived: the graph's output widths from a dummy row
            logits, deltas = self.runner.run_many([torch.zeros(1, *pooled.shape[1:])])
            return torch.from_numpy(logits[:0]), torch.from_numpy(deltas[:0])
        logits, deltas = self.runner.run_many([pooled])
        return torch.from_numpy(logits), torch.from_numpy(deltas)


class OnnxMaskPredictor(nn.Module):
    """``mask_head.onnx`` (mask head + predictor) in the RoI heads' mask predictor slot."""

    def __init__(self, runner: OnnxRunner) -> None:
        super().__init__()
        self.runner = runner

    def forward(self, pooled: Tensor) -> Tensor:
        return run_mask_graph(self.runner, pooled)[0]


def run_mask_graph(runner: OnnxRunner, pooled: Tensor) -> list[Tensor]:
    """``mask_head.onnx`` on RoI features: the logits of each mask branch."""
    if len(pooled) == 0:  # no detection: the graph's output shapes from a dummy row
        return [torch.from_numpy(o[:0]) for o in runner.run_many([torch.zeros(1, *pooled.shape[1:])])]
    return [torch.from_numpy(o) for o in runner.run_many([pooled])]
