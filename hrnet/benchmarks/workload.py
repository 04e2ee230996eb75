"""The measured workloads of ``hrnet bench``: our model or timm's, its batch, loss and optimizer.

``Workload.run_with_cpu`` times train steps (zero_grad, forward, loss in fp32, backward, Adam step)
or inference batches, device-synchronised, and reports the process's CPU seconds beside the wall
time; ``matmul_gflops`` measures the machine's matmul rate the achieved FLOP rates are compared to.
"""

from __future__ import annotations

import contextlib
import resource
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hrnet.errors import InputError

IGNORE_INDEX = 255
LOSSES = {
    "pose": "JointsMSELoss (all joint weights 1) on random heatmap targets",
    "segmentation": "cross-entropy (ignore 255) on bilinearly upsampled logits, random labels",
}


class TimmBackbone(nn.Module):
    """timm's ``features_only`` HRNet, keeping the stride 4, 8, 16, 32 maps (highest resolution first)."""

    def __init__(self, name: str, feature_location: str = "incre") -> None:
        super().__init__()
        import timm

        kwargs = {} if feature_location == "incre" else {"feature_location": ""}
        self.body = timm.create_model(name, features_only=True, pretrained=False, **kwargs)
        reductions = self.body.feature_info.reduction()
        self.keep = [i for i, r in enumerate(reductions) if r >= 4]
        self.out_channels = [self.body.feature_info.channels()[i] for i in self.keep]

    def forward(self, x: Tensor) -> list[Tensor]:
        features = self.body(x)
        return [features[i] for i in self.keep]


def build_ours(spec: dict[str, Any]) -> nn.Module:
    from hrnet.models import create_model

    return create_model(spec["model"], task=spec["task"], head=spec["head"], num_outputs=spec["num_outputs"])


def build_timm(spec: dict[str, Any]) -> nn.Module:
    """timm's backbone with *our* representation head and task head classes on top (same head, same init)."""
    from hrnet.models.factory import PoseModel, SegmentationModel
    from hrnet.models.necks import build_neck

    backbone = TimmBackbone(spec["timm_model"], spec["timm_feature_location"])
    neck = build_neck(spec["head"], backbone.out_channels)
    cls = PoseModel if spec["task"] == "pose" else SegmentationModel
    return cls(backbone, neck, spec["num_outputs"])  # type: ignore[arg-type]


BUILDERS: dict[str, Callable[[dict[str, Any]], nn.Module]] = {"ours": build_ours, "timm": build_timm}


def forward_macs(kind: str, spec: dict[str, Any]) -> int:
    from hrnet.models.summary import count_macs

    with torch.device("meta"):
        model = BUILDERS[kind](spec)
    return count_macs(model, tuple(spec["input_size"]))


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a cuda device without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: CUDA is not available on this machine")
    return device


def configure_device(device: torch.device) -> None:
    """cuDNN autotuning on (usual for training; same for both models); TF32 left at torch's defaults."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def autocast_context(spec: dict[str, Any], device: torch.device) -> contextlib.AbstractContextManager:
    if spec["precision"] == "bf16-mixed":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def make_inputs(spec: dict[str, Any], device: torch.device, seed: int = 0) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(spec["batch_size"], 3, *spec["input_size"], generator=g)
    if spec["channels_last"]:
        x = x.contiguous(memory_format=torch.channels_last)
    return x.to(device)


class Workload:
    """One model with its optimizer, its batch and the train / inference step closures."""

    def __init__(self, kind: str, spec: dict[str, Any], device: torch.device) -> None:
        self.kind, self.spec, self.device = kind, spec, device
        torch.manual_seed(0)
        model = BUILDERS[kind](spec).to(device)
        if spec["channels_last"]:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        impl = spec.get("adam", "default")
        options = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[impl]
        self.optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **options)
        self.step_model: nn.Module = torch.compile(model) if spec["compile"] else model  # type: ignore[assignment]
        self.x = make_inputs(spec, device)
        self._targets: dict[str, Tensor] | None = None

    def _loss(self, out: Tensor) -> Tensor:
        out = out.float()
        if self._targets is None:  # built from the first output's shape (heatmap / logit size)
            g = torch.Generator().manual_seed(1)
            n, k, h, w = out.shape
            if self.spec["task"] == "pose":
                self._targets = {
                    "target": torch.rand(n, k, h, w, generator=g).to(self.device),
                    "weight": torch.ones(n, k, 1).to(self.device),
                }
            else:
                label = torch.randint(0, k, (n, *self.spec["input_size"]), generator=g)
                label[:, :4] = IGNORE_INDEX
                self._targets = {"label": label.to(self.device)}
        t = self._targets
        if self.spec["task"] == "pose":  # JointsMSELoss
            weight = t["weight"].reshape(out.shape[0], out.shape[1], 1, 1)
            return 0.5 * torch.mean((out * weight - t["target"] * weight) ** 2)
        logits = F.interpolate(out, size=t["label"].shape[-2:], mode="bilinear", align_corners=False)
        return F.cross_entropy(logits, t["label"], ignore_index=IGNORE_INDEX)

    def train_step(self) -> None:
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with autocast_context(self.spec, self.device):
            out = self.step_model(self.x)
        self._loss(out).backward()
        self.optimizer.step()

    def infer_step(self) -> None:
        self.model.eval()
        with torch.inference_mode(), autocast_context(self.spec, self.device):
            self.step_model(self.x)

    def run(self, mode: str, steps: int) -> float:
        """Seconds for ``steps`` steps of ``mode`` ("train" / "infer"), device-synchronised."""
        return self.run_with_cpu(mode, steps)[0]

    def run_with_cpu(self, mode: str, steps: int) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process, all threads) of ``steps`` steps of ``mode``."""
        step = self.train_step if mode == "train" else self.infer_step
        _sync(self.device)
        c0, t0 = _cpu_seconds(), time.perf_counter()
        for _ in range(steps):
            step()
        _sync(self.device)
        return time.perf_counter() - t0, _cpu_seconds() - c0


def matmul_gflops(device: torch.device, dtype: torch.dtype, n: int, iters: int = 3) -> float:
    """GFLOP/s of ``iters`` ``(n x n) @ (n x n)`` products (2 n^3 FLOPs each), after one warm-up product."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=g).to(device=device, dtype=dtype)
    torch.mm(a, b)
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(iters):
        torch.mm(a, b)
    _sync(device)
    return 2.0 * n**3 * iters / (time.perf_counter() - t0) / 1e9
