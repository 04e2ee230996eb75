"""``hrnet bench``: training and inference throughput of an HRNet model, next to timm's HRNet.

What is measured, for a chosen variant / task / head / input size / batch / precision / memory
format (and optionally ``torch.compile``):

* **train**: images per second of a full training step (forward, loss, backward, ``Adam`` step);
* **inference**: images per second of a forward pass under ``torch.inference_mode`` (eval mode);
* **peak train memory**: see "Memory" below;
* **matmul rate**: GFLOP/s of a large square ``torch.mm`` in the compute dtype, measured in the
  same process, so each model's achieved FLOP rate can be shown as a fraction of it.

Every model is warmed up first (``--warmup`` steps, which also triggers compilation), then
timed ``--repeats`` times over ``--steps`` steps; the figures are the medians. Our model and
timm's are *interleaved* in one process (ours, timm, timm, ours, ... — the order alternates per
repeat, and a matmul sample is taken each repeat), so that load from other processes on a shared
machine affects both about equally; the ratios ours/timm come from the same run, both as the ratio
of the medians and as the median of the per-repeat (back-to-back) ratios. Each repeat also
records the process's CPU share (CPU seconds / (wall seconds x threads)): well below 100% means
other processes held the cores during that repeat; the medians over the repeats with a share of
at least 90% ("uncontended") are reported too.

The timm model is ``timm.create_model(<name>, features_only=True, pretrained=False)`` with the
same representation head and task head as ours on top of its stride-4..32 features (for pose V1:
a 1x1 conv from the stride-4 map to the keypoint heatmaps), the same loss and the same optimizer.
Note that timm's ``features_only`` model applies its classification "incre" bottlenecks to every
branch (stride-4 map of 4C channels) and fuses all branches in the last module, so it does a little
more arithmetic than the official pose V1 model; the multiply-adds of both are reported.

FLOP convention: multiply-adds (MACs) of one forward pass per image are counted with
:func:`hrnet.models.summary.count_macs` (every convolution and matmul), FLOPs = 2 x MACs;
a training step is counted as 3 x forward (forward + backward of about twice the forward),
inference as 1 x forward. Normalisation, activations and element-wise work are not counted.

Memory: each model is run alone in a fresh ``spawn`` subprocess (warm-up + one training step).
On CUDA the figure is ``torch.cuda.max_memory_allocated`` there (parameters, gradients, Adam
state and activations). On CPU it is the process's peak resident set size during the steps
minus its resident size just before the model was built (``VmHWM`` reset through
``/proc/self/clear_refs`` where allowed, else ``getrusage(RUSAGE_SELF).ru_maxrss``): it includes
the allocator's caching and the oneDNN scratch buffers, i.e. what the OS has to provide.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import multiprocessing
import os
import platform
import resource
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

DEFAULT_OUTPUTS = {"pose": 17, "segmentation": 19}
PRECISIONS = ("fp32", "bf16-mixed")
RESULTS_DIR = Path("benchmarks") / "results"
IGNORE_INDEX = 255
FLOP_CONVENTION = (
    "FLOPs/img = 2 x forward MACs (count_macs: every conv and matmul); train step = 3 x forward "
    "(forward + backward ~ 2 x forward), inference = 1 x forward; BN/ReLU/element-wise ops not counted"
)
LOSSES = {
    "pose": "JointsMSELoss (all joint weights 1) on random heatmap targets",
    "segmentation": "cross-entropy (ignore 255) on bilinearly upsampled logits, random labels",
}
MEMORY_METHOD = {
    "cuda": "torch.cuda.max_memory_allocated in a fresh subprocess holding only this model "
    "(parameters + gradients + Adam state + activations), warm-up + 1 train step",
    "cpu": "peak RSS during warm-up + 1 train step minus RSS before the model was built, in a fresh "
    "subprocess holding only this model (VmHWM reset via /proc/self/clear_refs, else ru_maxrss); "
    "includes allocator caching",
}


# ----------------------------------------------------------------------------- machine
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info(device: torch.device) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "device": str(device),
    }
    try:
        import timm

        info["timm"] = timm.__version__
    except ImportError:
        info["timm"] = None
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
        info["cudnn"] = torch.backends.cudnn.version()
        info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
        info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
        info["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    with contextlib.suppress(OSError):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return info


# ----------------------------------------------------------------------------- models
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


# ----------------------------------------------------------------------------- steps
def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available, else cpu; a cuda device without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine")
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


# ----------------------------------------------------------------------------- memory probe
def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _peak_rss_bytes() -> int:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_probe(
    kind: str, spec: dict[str, Any], device_name: str, threads: int, warmup: int
) -> dict[str, Any]:
    """Peak memory of the training step of one model, alone in this (fresh) process."""
    torch.set_num_threads(threads)
    device = torch.device(device_name)
    configure_device(device)
    gc.collect()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        workload = Workload(kind, spec, device)
        workload.run("train", max(1, warmup) + 1)
        return {"peak_bytes": int(torch.cuda.max_memory_allocated(device)), "method": "cuda"}
    base = _rss_bytes()
    hwm_reset = _reset_peak_rss()
    base_peak = _peak_rss_bytes()
    workload = Workload(kind, spec, device)
    workload.run("train", max(1, warmup) + 1)
    peak = _peak_rss_bytes()
    if not hwm_reset:  # lifetime peak: only meaningful when the steps exceed the import-time peak
        peak = max(peak, base_peak)
    return {"peak_bytes": int(peak - base), "rss_before": base, "hwm_reset": hwm_reset, "method": "cpu-rss"}


def run_memory_probe(
    kind: str, spec: dict[str, Any], device: torch.device, threads: int, warmup: int
) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(memory_probe, (kind, spec, str(device), threads, warmup))


# ----------------------------------------------------------------------------- benchmark
def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    task = args.task
    return {
        "model": args.model,
        "task": task,
        "head": args.head,
        "input_size": [int(v) for v in args.input_size],
        "batch_size": int(args.batch_size),
        "num_outputs": args.num_outputs or DEFAULT_OUTPUTS[task],
        "precision": args.precision,
        "channels_last": bool(args.channels_last),
        "compile": bool(args.compile),
        "timm_model": args.timm_model or args.model,
        "timm_feature_location": args.timm_feature_location,
        "adam": args.adam,
    }


def canonical_command(args: argparse.Namespace) -> str:
    """An ``hrnet bench`` command line that reproduces this run (every option spelled out)."""
    parts = [
        "hrnet", "bench",
        "--model", args.model, "--task", args.task, "--head", args.head,
        "--input-size", str(args.input_size[0]), str(args.input_size[1]),
        "--batch-size", str(args.batch_size), "--precision", args.precision,
        "--device", args.device, "--warmup", str(args.warmup), "--repeats", str(args.repeats),
        "--steps", str(args.steps), "--infer-steps", str(args.infer_steps),
        "--matmul-size", str(args.matmul_size), "--modes", *args.modes,
    ]  # fmt: skip
    if args.threads:
        parts += ["--threads", str(args.threads)]
    if args.num_outputs:
        parts += ["--num-outputs", str(args.num_outputs)]
    if args.channels_last:
        parts.append("--channels-last")
    if args.compile:
        parts.append("--compile")
    if args.no_timm:
        parts.append("--no-timm")
    else:
        parts += ["--timm-model", args.timm_model or args.model]
        parts += ["--timm-feature-location", args.timm_feature_location]
    if args.adam != "default":
        parts += ["--adam", args.adam]
    if args.no_memory:
        parts.append("--no-memory")
    if args.out:
        parts += ["--out", str(args.out)]
    return shlex.join(parts)


def default_out_path(spec: dict[str, Any], device: torch.device, threads: int) -> Path:
    h, w = spec["input_size"]
    name = f"bench_{spec['model']}_{spec['task']}_{spec['head']}_{h}x{w}"
    name += f"_b{spec['batch_size']}_{spec['precision']}"
    if spec["channels_last"]:
        name += "_cl"
    if spec["compile"]:
        name += "_compile"
    return RESULTS_DIR / f"{name}_{device.type}{'' if device.type == 'cuda' else f'_t{threads}'}.json"


UNCONTENDED_SHARE = 0.9


def _uncontended(rates: list[float], shares: list[float]) -> dict[str, Any]:
    """Median rate over the repeats in which this process had >= 90% of its threads' CPU time."""
    kept = [r for r, share in zip(rates, shares, strict=True) if share >= UNCONTENDED_SHARE]
    return {
        "uncontended_repeats": len(kept),
        "img_per_s_uncontended": round(statistics.median(kept), 4) if kept else None,
    }


def _order(kinds: Sequence[str], repeat: int) -> Iterator[str]:
    return iter(kinds if repeat % 2 == 0 else list(reversed(kinds)))


def benchmark(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    configure_device(device)
    spec = spec_from_args(args)
    kinds = ["ours"] if args.no_timm else ["ours", "timm"]
    started = datetime.now(timezone.utc)
    machine = machine_info(device)

    macs = {kind: forward_macs(kind, spec) for kind in kinds}
    log(f"building {', '.join(kinds)} ({spec['model']} {spec['task']}/{spec['head']}) on {device}")
    workloads = {kind: Workload(kind, spec, device) for kind in kinds}
    mm_dtype = torch.bfloat16 if spec["precision"] == "bf16-mixed" else torch.float32
    matmul: list[float] = []
    per_run = {"train": spec["batch_size"] * args.steps, "infer": spec["batch_size"] * args.infer_steps}
    series: dict[str, dict[str, list[float]]] = {k: {"train": [], "infer": []} for k in kinds}
    cpu_share: dict[str, dict[str, list[float]]] = {k: {"train": [], "infer": []} for k in kinds}
    warmup_s: dict[str, dict[str, float]] = {k: {} for k in kinds}
    for mode in args.modes:
        steps = args.steps if mode == "train" else args.infer_steps
        for kind in kinds:
            log(f"  warm-up {mode} {kind} ({args.warmup} step(s){', compiling' if spec['compile'] else ''})")
            warmup_s[kind][mode] = round(workloads[kind].run(mode, args.warmup), 3) if args.warmup else 0.0
        for r in range(args.repeats):
            matmul.append(matmul_gflops(device, mm_dtype, args.matmul_size))
            for kind in _order(kinds, r):
                wall, cpu = workloads[kind].run_with_cpu(mode, steps)
                series[kind][mode].append(wall)
                cpu_share[kind][mode].append(cpu / (wall * threads))
            log(f"  {mode} repeat {r + 1}/{args.repeats}: " + ", ".join(
                f"{k} {per_run[mode] / series[k][mode][-1]:.2f} img/s" for k in kinds))  # fmt: skip
    del workloads
    gc.collect()

    mm_rate = statistics.median(matmul)
    results: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        entry: dict[str, Any] = {
            "name": f"hrnet.{spec['model']}" if kind == "ours" else f"timm.{spec['timm_model']}",
            "gmacs_per_img": round(macs[kind] / 1e9, 4),
            "warmup_seconds": warmup_s[kind],
        }
        for mode in args.modes:
            secs = series[kind][mode]
            steps = args.steps if mode == "train" else args.infer_steps
            rates = [per_run[mode] / s for s in secs]
            rate = statistics.median(rates)
            flops_per_img = 2 * macs[kind] * (3 if mode == "train" else 1)
            achieved = flops_per_img * rate / 1e9
            entry[mode] = {
                "img_per_s": round(rate, 4),
                "img_per_s_min": round(min(rates), 4),
                "img_per_s_max": round(max(rates), 4),
                "ms_per_step": round(1000.0 * statistics.median(secs) / steps, 2),
                "gflops_per_s": round(achieved, 3),
                "fraction_of_matmul": round(achieved / mm_rate, 4),
                "repeat_seconds": [round(s, 5) for s in secs],
            }
            if device.type == "cpu":  # CPU time / (wall time x threads): < 1 when others took the cores
                entry[mode]["cpu_share_median"] = round(statistics.median(cpu_share[kind][mode]), 3)
                entry[mode]["repeat_cpu_share"] = [round(v, 3) for v in cpu_share[kind][mode]]
                entry[mode].update(_uncontended(rates, cpu_share[kind][mode]))
        if not args.no_memory and "train" in args.modes:
            log(f"  memory probe {kind} (fresh subprocess)")
            probe = run_memory_probe(kind, spec, device, threads, args.warmup)
            entry["train_peak_memory_mib"] = round(probe["peak_bytes"] / 2**20, 1)
            entry["memory_probe"] = probe
        results[kind] = entry

    ratios: dict[str, float] = {}
    if "timm" in results:
        ours, ref = results["ours"], results["timm"]
        for mode in args.modes:
            ratios[f"{mode}_throughput"] = round(ours[mode]["img_per_s"] / ref[mode]["img_per_s"], 4)
            # ours and timm ran back to back in each repeat: the per-repeat ratios cancel slow load drifts
            paired = [t / o for o, t in zip(series["ours"][mode], series["timm"][mode], strict=True)]
            ratios[f"{mode}_throughput_paired_median"] = round(statistics.median(paired), 4)
            if device.type == "cpu":
                both = zip(paired, cpu_share["ours"][mode], cpu_share["timm"][mode], strict=True)
                clean = [p for p, so, st in both if min(so, st) >= UNCONTENDED_SHARE]
                ratios[f"{mode}_throughput_paired_uncontended"] = (
                    round(statistics.median(clean), 4) if clean else None
                )
        if "train_peak_memory_mib" in ours and ref.get("train_peak_memory_mib"):
            ratios["train_peak_memory"] = round(
                ours["train_peak_memory_mib"] / ref["train_peak_memory_mib"], 4
            )
        ratios["gmacs"] = round(ours["gmacs_per_img"] / ref["gmacs_per_img"], 4)

    with contextlib.suppress(OSError):
        machine["load_average_end"] = [round(v, 2) for v in os.getloadavg()]
    return {
        "benchmark": "hrnet bench",
        "command": canonical_command(args),
        "argv": list(sys.argv),
        "started_utc": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(timezone.utc) - started).total_seconds(), 1),
        "machine": machine,
        "config": {
            **spec,
            "device": str(device),
            "threads": threads,
            "warmup": args.warmup,
            "repeats": args.repeats,
            "steps": args.steps,
            "infer_steps": args.infer_steps,
            "optimizer": f"Adam(lr=1e-3, implementation={spec['adam']})",
            "loss": LOSSES[spec["task"]],
        },
        "flop_convention": FLOP_CONVENTION,
        "memory_method": MEMORY_METHOD[device.type],
        "matmul": {
            "dtype": str(mm_dtype).replace("torch.", ""),
            "size": args.matmul_size,
            "gflops_per_s": round(mm_rate, 2),
            "samples": [round(v, 2) for v in matmul],
        },
        "results": results,
        "ratios_ours_over_timm": ratios,
    }


# ----------------------------------------------------------------------------- output
def _fmt(value: Any, spec: str = ".2f") -> str:
    if value is None:
        return "-"
    return format(value, spec) if isinstance(value, int | float) and not math.isnan(value) else str(value)


def format_table(report: dict[str, Any]) -> str:
    cfg, res, ratios = report["config"], report["results"], report["ratios_ours_over_timm"]
    kinds = list(res)
    machine = report["machine"]
    head = (
        f"{cfg['model']} {cfg['task']}/{cfg['head']} {cfg['input_size'][0]}x{cfg['input_size'][1]} "
        f"batch {cfg['batch_size']} {cfg['precision']}{' channels_last' if cfg['channels_last'] else ''}"
        f"{' compile' if cfg['compile'] else ''} on {cfg['device']} ({machine.get('gpu') or machine['cpu']}, "
        f"{cfg['threads']} threads), median of {cfg['repeats']}"
    )
    mm = report["matmul"]
    lines = [head, f"matmul {mm['dtype']} {mm['size']}^3: {mm['gflops_per_s']:.1f} GFLOP/s (median)"]
    rows: list[tuple[str, ...]] = [("", *(res[k]["name"] for k in kinds), *(["ours/timm"] if ratios else []))]
    rows.append(("GMACs/img (fwd)", *(_fmt(res[k]["gmacs_per_img"]) for k in kinds),
                 *([_fmt(ratios.get("gmacs"), ".3f")] if ratios else [])))  # fmt: skip
    for mode, label in (("train", "train"), ("infer", "inference")):
        if mode not in res[kinds[0]]:
            continue
        ratio = []
        if ratios:
            paired = ratios[f"{mode}_throughput_paired_median"]
            ratio = [f"{ratios[f'{mode}_throughput']:.3f}x (paired {paired:.3f}x)"]
        rows.append((f"{label} img/s", *(_fmt(res[k][mode]["img_per_s"]) for k in kinds), *ratio))
        rows.append((f"{label} ms/step", *(_fmt(res[k][mode]["ms_per_step"], ".1f") for k in kinds),
                     *([""] if ratios else [])))  # fmt: skip
        rows.append((f"{label} GFLOP/s", *(_fmt(res[k][mode]["gflops_per_s"], ".1f") for k in kinds),
                     *([""] if ratios else [])))  # fmt: skip
        fractions = (f"{100 * res[k][mode]['fraction_of_matmul']:.1f}%" for k in kinds)
        rows.append((f"{label} % of matmul", *fractions, *([""] if ratios else [])))
        if "cpu_share_median" not in res[kinds[0]][mode]:
            continue
        shares = (f"{100 * res[k][mode]['cpu_share_median']:.0f}%" for k in kinds)
        rows.append((f"{label} CPU share", *shares, *([""] if ratios else [])))
        if any(res[k][mode]["uncontended_repeats"] < cfg["repeats"] for k in kinds):
            clean = (
                f"{_fmt(res[k][mode]['img_per_s_uncontended'])} ({res[k][mode]['uncontended_repeats']})"
                for k in kinds
            )
            extra = []
            if ratios:
                value = ratios[f"{mode}_throughput_paired_uncontended"]
                extra = [f"paired {value:.3f}x" if value is not None else "-"]
            rows.append((f"{label} img/s, share>=90% (n)", *clean, *extra))
    if "train_peak_memory_mib" in res[kinds[0]]:
        label = "train peak MiB" + (" (alloc)" if cfg["device"].startswith("cuda") else " (RSS delta)")
        rows.append((label, *(_fmt(res[k].get("train_peak_memory_mib"), ".0f") for k in kinds),
                     *([_fmt(ratios.get("train_peak_memory"), ".3f") + "x"] if ratios else [])))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        lines.append(
            "  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row))
        )
    return "\n".join(lines)


# ----------------------------------------------------------------------------- CLI
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hrnet bench``."""
    from hrnet.models import list_models
    from hrnet.models.factory import TASKS
    from hrnet.models.necks import HEADS

    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", default="hrnet_w32", choices=list_models())
    parser.add_argument("--task", default="pose", choices=TASKS)
    parser.add_argument("--head", default="v1", choices=HEADS)
    parser.add_argument("--input-size", nargs=2, type=int, default=(256, 192), metavar=("H", "W"))
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--num-outputs", type=int, default=None, help="keypoints / classes (17 / 19)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS, help="bf16-mixed = autocast bf16")
    parser.add_argument("--channels-last", action="store_true", help="model and input in channels_last")
    parser.add_argument("--compile", action="store_true", help="torch.compile both models (default options)")
    parser.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch.set_num_threads (0: leave torch's default)"
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model and mode")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats (median reported)")
    parser.add_argument("--steps", type=int, default=2, help="train steps per timed repeat")
    parser.add_argument("--infer-steps", type=int, default=3, help="inference batches per timed repeat")
    parser.add_argument("--modes", nargs="+", default=["train", "infer"], choices=["train", "infer"])
    parser.add_argument("--matmul-size", type=int, default=2048, help="n of the n x n matmul rate probe")
    parser.add_argument("--no-timm", action="store_true", help="only our model")
    parser.add_argument("--timm-model", default=None, help="timm model name (default: --model)")
    parser.add_argument(
        "--timm-feature-location",
        default="incre",
        choices=["incre", "plain"],
        help="incre: timm's features_only default (stride-4 map through its incre bottleneck, 4C channels); "
        "plain: feature_location='' (the raw branch maps, as ours)",
    )
    parser.add_argument(
        "--adam",
        default="default",
        choices=["default", "foreach", "fused"],
        help="Adam implementation for both models (default: torch's choice, per-parameter loop on CPU)",
    )
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument(
        "--out", type=Path, default=None, help="JSON path (default: benchmarks/results/bench_*.json)"
    )
    parser.add_argument("--json", action="store_true", help="print the JSON report instead of the table")


def run(args: argparse.Namespace) -> int:
    """Run ``hrnet bench``; returns the process exit code."""
    from hrnet.io import atomic_write_json

    if min(args.batch_size, args.repeats, args.steps, args.infer_steps) < 1 or args.warmup < 0:
        raise ValueError("--batch-size, --repeats, --steps and --infer-steps must be >= 1, --warmup >= 0")
    if args.compile and not hasattr(torch, "compile"):
        raise ValueError("torch.compile is not available in this torch build")
    if not args.no_timm:
        try:
            import timm
        except ImportError:
            raise ValueError("timm is not installed (pip install timm, or pass --no-timm)") from None
        name = args.timm_model or args.model
        if name not in timm.list_models("hrnet*"):
            raise ValueError(f"timm has no model {name!r}; pass --timm-model or --no-timm")
        if any(v % 32 for v in args.input_size):
            raise ValueError("timm's HRNet upsamples by fixed factors: --input-size must be multiples of 32 "
                             "(or pass --no-timm)")  # fmt: skip
    quiet = args.json
    report = benchmark(args, log=(lambda _msg: None) if quiet else (lambda msg: print(msg, flush=True)))
    device = torch.device(report["config"]["device"])
    out = args.out or default_out_path(spec_from_args(args), device, report["config"]["threads"])
    atomic_write_json(out, report)
    if quiet:
        print(json.dumps(report, indent=2))
    else:
        print()
        print(format_table(report))
        print(f"\nwrote {out}")
    return 0
