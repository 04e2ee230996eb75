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
import gc
import shlex
import statistics
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import torch

from hrnet.benchmarks.memory import MEMORY_METHOD, run_memory_probe
from hrnet.benchmarks.report import (
    RESULTS_DIR,
    machine_info,
    make_report,
    progress_log,
    utc_now,
    write_and_print,
)
from hrnet.benchmarks.throughput_table import format_table
from hrnet.benchmarks.workload import (
    LOSSES,
    Workload,
    configure_device,
    forward_macs,
    matmul_gflops,
    resolve_device,
)
from hrnet.errors import InputError
from hrnet.models.registries import TASK_MODELS

PRECISIONS = ("fp32", "bf16-mixed")
FLOP_CONVENTION = (
    "FLOPs/img = 2 x forward MACs (count_macs: every conv and matmul); train step = 3 x forward "
    "(forward + backward ~ 2 x forward), inference = 1 x forward; BN/ReLU/element-wise ops not counted"
)


def spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    task = args.task
    return {
        "model": args.model,
        "task": task,
        "head": args.head,
        "input_size": [int(v) for v in args.input_size],
        "batch_size": int(args.batch_size),
        "num_outputs": args.num_outputs or TASK_MODELS.get(task).default_outputs,
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
    started = utc_now()
    machine = machine_info(device)
    machine["timm"] = _timm_version()

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

    return make_report(
        "hrnet bench",
        canonical_command(args),
        started,
        machine,
        config={
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
        flop_convention=FLOP_CONVENTION,
        memory_method=MEMORY_METHOD[device.type],
        matmul={
            "dtype": str(mm_dtype).replace("torch.", ""),
            "size": args.matmul_size,
            "gflops_per_s": round(mm_rate, 2),
            "samples": [round(v, 2) for v in matmul],
        },
        results=results,
        ratios_ours_over_timm=ratios,
    )


def _timm_version() -> str | None:
    try:
        import timm
    except ImportError:
        return None
    return timm.__version__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``hrnet bench``."""
    from hrnet.models import list_models
    from hrnet.models.factory import dense_tasks
    from hrnet.models.registries import NECKS

    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--model", default="hrnet_w32", choices=list_models())
    parser.add_argument("--task", default="pose", choices=dense_tasks())
    parser.add_argument("--head", default="v1", choices=NECKS.names())
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
    parser.add_argument(
        "--inference",
        action="store_true",
        help="instead: packaged inference (BN folded, exported, AOTInductor, onnxruntime) vs timm eager",
    )
    parser.add_argument("--no-compile", action="store_true", help="--inference: skip the AOTInductor variant")
    parser.add_argument(
        "--sweep",
        action="store_true",
        help="--inference: one table, every precision, W32 pose and W18-small segmentation, "
        "--sweep-batches x --sweep-threads (ignores --model/--input-size/--batch-size/--threads)",
    )
    parser.add_argument(
        "--detection",
        action="store_true",
        help="instead: a Faster R-CNN train step, ours on HRNetV2p (--model) vs torchvision's on "
        "--reference ResNet-FPN, same --input-size/--batch-size, time and peak memory",
    )
    parser.add_argument("--reference", default="resnet50", choices=["resnet18", "resnet50"])
    parser.add_argument("--seg-size", nargs=2, type=int, default=(256, 512), metavar=("H", "W"))
    parser.add_argument("--sweep-batches", nargs="+", type=int, default=[1, 8])
    parser.add_argument("--sweep-threads", nargs="+", type=int, default=[1, 2])


def run(args: argparse.Namespace) -> int:
    """Run ``hrnet bench``; returns the process exit code."""
    if args.detection:
        from hrnet.benchmarks import detection_step

        return detection_step.run(args)
    if args.inference:
        from hrnet.benchmarks import inference, inference_sweep

        inference.check_args(args)
        return inference_sweep.run(args) if args.sweep else inference.run(args)
    if min(args.batch_size, args.repeats, args.steps, args.infer_steps) < 1 or args.warmup < 0:
        raise InputError("--batch-size, --repeats, --steps and --infer-steps must be >= 1, --warmup >= 0")
    if args.compile and not hasattr(torch, "compile"):
        raise InputError("torch.compile is not available in this torch build")
    if not args.no_timm:
        try:
            import timm
        except ImportError:
            raise InputError("timm is not installed (pip install timm, or pass --no-timm)") from None
        name = args.timm_model or args.model
        if name not in timm.list_models("hrnet*"):
            raise InputError(f"timm has no model {name!r}; pass --timm-model or --no-timm")
        if any(v % 32 for v in args.input_size):
            raise InputError("timm's HRNet upsamples by fixed factors: --input-size must be multiples of 32 "
                             "(or pass --no-timm)")  # fmt: skip
    report = benchmark(args, log=progress_log(args.json))
    device = torch.device(report["config"]["device"])
    out = args.out or default_out_path(spec_from_args(args), device, report["config"]["threads"])
    write_and_print(report, out, format_table, args.json)
    return 0
