"""Runners: a packaged network as ``batch (N, 3, H, W) float32 -> outputs``, torch or onnxruntime."""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch import nn


class TorchRunner:
    """Calls a loaded exported program (or any module) without autograd."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module

    def __call__(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return self.module(torch.as_tensor(images))


class OnnxRunner:
    """An onnxruntime CPU session over ``model.onnx``; returns the first output as a tensor."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ValueError(
                f"{path}: ONNX package needs onnxruntime; install the project's onnx extra "
                "(pip install -e '.[onnx]')"
            ) from None
        options = ort.SessionOptions()
        threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def run_all(self, images: torch.Tensor | np.ndarray) -> list[np.ndarray]:
        array = images.numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        return self.session.run(None, {self.input_name: np.ascontiguousarray(array, dtype=np.float32)})

    def __call__(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.run_all(images)[0])


class OnnxFeaturesDetector(nn.Module):
    """A scripted torchvision Faster R-CNN whose feature extractor runs in onnxruntime.

    Resizing/normalising, RPN box decoding + NMS, the RoI box head, box decoding + NMS and the
    mapping back to image pixels stay in the TorchScript detector (``model.pt``).
    """

    def __init__(self, scripted: torch.jit.ScriptModule, features: OnnxRunner) -> None:
        super().__init__()
        self.scripted, self.features = scripted, features

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        sizes = [(int(im.shape[-2]), int(im.shape[-1])) for im in images]
        batch, _ = self.scripted.transform(images, None)
        levels = self.features.run_all(batch.tensors)
        features = OrderedDict((str(i), torch.from_numpy(level)) for i, level in enumerate(levels))
        proposals, _ = self.scripted.rpn(batch, features, None)
        detections, _ = self.scripted.roi_heads(features, proposals, batch.image_sizes, None)
        return self.scripted.transform.postprocess(detections, batch.image_sizes, sizes)
