"""``hrnet bench --detection``: one detection training step, ours next to torchvision's own detector.

Compared in one process, at the same image size, batch, optimizer and thread count:

* ``ours``: this project's Faster R-CNN on the HRNetV2p pyramid (``--model``, 256-channel levels
  as in the paper, torchvision's RPN/RoI settings, a 1024-wide box head, anchors 8 x stride);
* ``torchvision``: torchvision's Faster R-CNN on a ResNet-FPN (``--reference``: resnet50 as
  ``fasterrcnn_resnet50_fpn``, or resnet18), untrained, BatchNorm trainable as in ours.

A step is what the detection task's training does: the detector's losses summed, backward, an AdamW
step. The batch is random images with three random boxes each (seeded, the same for both), and
``min_size``/``max_size`` are set to the image's sides so torchvision's transform does not resize.
The two run interleaved (the order alternates every repeat, as in ``hrnet bench``), so the ratio
comes from the same run; peak memory is measured for each alone in a fresh subprocess
(:mod:`hrnet.benchmarks.memory`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from hrnet.benchmarks.memory import MEMORY_METHOD, run_memory_probe
from hrnet.benchmarks.report import RESULTS_DIR, machine_info, make_report, utc_now, write_and_print
from hrnet.benchmarks.workload import _cpu_seconds, _sync, resolve_device
from hrnet.errors import InputError

KINDS = ("ours", "torchvision")
NUM_CLASSES = 80
BOXES_PER_IMAGE = 3
WORKLOAD_CLASS = "hrnet.benchmarks.detection_step:DetectionWorkload"


def build_detector_for(kind: str, spec: dict[str, Any]) -> nn.Module:
    height, width = spec["input_size"]
    sizes = {"min_size": min(height, width), "max_size": max(height, width)}
    if kind == "ours":
        from hrnet.models.detection import build_detector

        return build_detector(
            spec["model"], "v2p", NUM_CLASSES, "faster_rcnn", anchor_scale=8.0, pyramid_channels=256,
            representation_size=1024, **sizes,
        )  # fmt: skip
    from torchvision.models.detection import FasterRCNN, fasterrcnn_resnet50_fpn
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    if spec["reference"] == "resnet50":
        classes = NUM_CLASSES + 1
        return fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=classes, **sizes)
    backbone = resnet_fpn_backbone(
        backbone_name=spec["reference"], weights=None, norm_layer=nn.BatchNorm2d, trainable_layers=5
    )
    return FasterRCNN(backbone, num_classes=NUM_CLASSES + 1, **sizes)


def make_batch(spec: dict[str, Any], device: torch.device) -> tuple[list[Tensor], list[dict[str, Tensor]]]:
    """Seeded images in [0, 1] and three boxes of at least 16 px per image, labels 1..80."""
    g = torch.Generator().manual_seed(0)
    height, width = spec["input_size"]
    images, targets = [], []
    for _ in range(spec["batch_size"]):
        images.append(torch.rand(3, height, width, generator=g).to(device))
        corner = torch.rand(BOXES_PER_IMAGE, 2, generator=g) * torch.tensor([width - 16, height - 16])
        side = 16 + torch.rand(BOXES_PER_IMAGE, 2, generator=g) * torch.tensor([width, height]) / 2
        far = torch.minimum(corner + side, torch.tensor([float(width), float(height)]))
        labels = torch.randint(1, NUM_CLASSES + 1, (BOXES_PER_IMAGE,), generator=g)
        targets.append({"boxes": torch.cat([corner, far], 1).to(device), "labels": labels.to(device)})
    return images, targets


class DetectionWorkload:
    """One detector, its AdamW optimizer and its batch; ``run`` times train steps."""

    def __init__(self, kind: str, spec: dict[str, Any], device: torch.device) -> None:
        torch.manual_seed(0)
        self.device = device
        self.model = build_detector_for(kind, spec).to(device).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4, weight_decay=1e-4)
        self.images, self.targets = make_batch(spec, device)
        self.parameters = sum(p.numel() for p in self.model.parameters())

    def train_step(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        losses = self.model(self.images, self.targets)
        sum(losses.values()).backward()
        self.optimizer.step()

    def run(self, mode: str, steps: int) -> float:
        return self.run_with_cpu(mode, steps)[0]

    def run_with_cpu(self, mode: str, steps: int) -> tuple[float, float]:
        """(wall seconds, CPU seconds of this process) of ``steps`` train steps (``mode`` is "train")."""
        if mode != "train":
            raise ValueError(f"the detection benchmark times train steps, not {mode!r}")
        _sync(self.device)
        c0, t0 = _cpu_seconds(), time.perf_counter()
        for _ in range(steps):
            self.train_step()
        _sync(self.device)
        return time.perf_counter() - t0, _cpu_seconds() - c0


def benchmark(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    spec = {
        "model": args.model, "reference": args.reference, "input_size": list(args.input_size),
        "batch_size": args.batch_size,
    }  # fmt: skip
    started = utc_now()
    workloads = {kind: DetectionWorkload(kind, spec, device) for kind in KINDS}
    for kind, workload in workloads.items():
        log(f"warm-up {kind} ({workload.parameters / 1e6:.1f}M parameters)")
        workload.run("train", args.warmup)
    walls: dict[str, list[float]] = {kind: [] for kind in KINDS}
    cpus: dict[str, list[float]] = {kind: [] for kind in KINDS}
    for repeat in range(args.repeats):
        for kind in KINDS if repeat % 2 == 0 else tuple(reversed(KINDS)):
            wall, cpu = workloads[kind].run_with_cpu("train", args.steps)
            walls[kind].append(wall / args.steps)
            cpus[kind].append(cpu / args.steps)
        times = ", ".join(f"{k} {walls[k][-1]:.3f} s/step" for k in KINDS)
        log(f"repeat {repeat + 1}/{args.repeats}: {times}")
    results: dict[str, Any] = {}
    for kind in KINDS:
        entry = {
            "parameters": workloads[kind].parameters,
            "step_s": round(statistics.median(walls[kind]), 4),
            "cpu_step_s": round(statistics.median(cpus[kind]), 4),
            "step_s_repeats": [round(t, 4) for t in walls[kind]],
        }
        if not args.no_memory:
            log(f"memory probe {kind} (fresh subprocess)")
            probe = run_memory_probe(kind, spec, device, threads, args.warmup, WORKLOAD_CLASS)
            entry["train_peak_memory_mib"] = round(probe["peak_bytes"] / 2**20, 1)
        results[kind] = entry
    ours, ref = walls["ours"], walls["torchvision"]
    ratios = {
        "step_time_ours_over_torchvision": round(statistics.median(ours) / statistics.median(ref), 3),
        "paired": round(statistics.median(o / r for o, r in zip(ours, ref, strict=True)), 3),
    }
    return make_report(
        "detection_step", _command(args), started, machine_info(device),
        config={**spec, "threads": threads, "warmup": args.warmup, "repeats": args.repeats,
                "steps": args.steps, "optimizer": "AdamW", "boxes_per_image": BOXES_PER_IMAGE,
                "memory_method": MEMORY_METHOD[device.type]},
        results=results, ratios=ratios,
    )  # fmt: skip


def _command(args: argparse.Namespace) -> str:
    height, width = args.input_size
    parts = [
        f"hrnet bench --detection --model {args.model} --reference {args.reference}",
        f"--input-size {height} {width} --batch-size {args.batch_size} --device {args.device}",
        f"--warmup {args.warmup} --repeats {args.repeats} --steps {args.steps}",
    ]
    if args.threads:
        parts.append(f"--threads {args.threads}")
    if args.no_memory:
        parts.append("--no-memory")
    return " ".join(parts)


def format_table(report: dict[str, Any]) -> str:
    config, results = report["config"], report["results"]
    lines = [
        f"Faster R-CNN train step, {'x'.join(map(str, config['input_size']))} images, batch "
        f"{config['batch_size']}, {config['threads']} thread(s)",
        "| detector | parameters | s / step | CPU s / step | peak train memory MiB |",
        "|---|---|---|---|---|",
    ]
    names = {"ours": f"ours: {config['model']} V2p", "torchvision": f"torchvision: {config['reference']}-FPN"}
    for kind, entry in results.items():
        lines.append(
            f"| {names[kind]} | {entry['parameters'] / 1e6:.1f}M | {entry['step_s']:.3f} "
            f"| {entry['cpu_step_s']:.3f} | {entry.get('train_peak_memory_mib', '-')} |"
        )
    ratios = report["ratios"]
    lines.append(
        f"ours / torchvision step time: {ratios['step_time_ours_over_torchvision']}x "
        f"(paired {ratios['paired']}x)"
    )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    if min(args.batch_size, args.repeats, args.steps) < 1 or args.warmup < 0:
        raise InputError("--batch-size, --repeats and --steps must be >= 1, --warmup >= 0")
    report = benchmark(args, log=(lambda _m: None) if args.json else print)
    height, width = args.input_size
    name = f"detection_step_{args.model}_vs_{args.reference}_{height}x{width}_b{args.batch_size}"
    out = args.out or RESULTS_DIR / f"{name}_t{report['config']['threads']}.json"
    write_and_print(report, Path(out), format_table, args.json)
    return 0
