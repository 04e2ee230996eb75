"""Runners: a packaged network as ``batch (N, 3, H, W) float32 -> outputs``, torch or onnxruntime."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hrnet.errors import InputError


class TorchRunner:
    """Calls a loaded exported program (or any module) without autograd, in channels_last.

    oneDNN convolutions take NHWC directly; on NCHW tensors each one reorders its input and
    output. Measured on W32 pose 256x192, batch 8, one CPU thread: 1.19x the CPU throughput of
    the same program on NCHW (benchmarks/RESULTS.md); outputs agree to float rounding (the
    packaging check runs through this class). ``autocast``: run under CPU bf16 autocast (bf16
    packages); the outputs come back as float32.
    """

    def __init__(self, module: nn.Module, autocast: bool = False) -> None:
        self.module = module.to(memory_format=torch.channels_last)
        self.autocast = autocast

    def __call__(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.autocast):
            batch = torch.as_tensor(images).contiguous(memory_format=torch.channels_last)
            return self.module(batch).float().contiguous()


class OnnxRunner:
    """An onnxruntime CPU session over ``model.onnx``; returns the first output as a tensor."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError(
                f"{path}: ONNX package needs onnxruntime; install the project's onnx extra "
                "(pip install -e '.[onnx]')"
            ) from None
        options = ort.SessionOptions()
        threads = threads or int(os.environ.get("OMP_NUM_THREADS", "0") or 0)
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]

    def run_all(self, images: torch.Tensor | np.ndarray) -> list[np.ndarray]:
        return self.run_many([images])

    def run_many(self, inputs: Sequence[torch.Tensor | np.ndarray]) -> list[np.ndarray]:
        """All outputs for the graph's inputs, given in the graph's order."""
        arrays = [x.numpy() if isinstance(x, torch.Tensor) else np.asarray(x) for x in inputs]
        feeds = {name: np.ascontiguousarray(a, dtype=np.float32) for name, a in zip(self.input_names, arrays)}
        return self.session.run(None, feeds)

    def __call__(self, images: torch.Tensor | np.ndarray) -> torch.Tensor:
        return torch.from_numpy(self.run_all(images)[0])
