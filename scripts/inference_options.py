"""What torch allows for packaged inference on this CPU: a profile and the options, interleaved.

    python scripts/inference_options.py --threads 1 --repeats 5 --out benchmarks/results/X.json

Model: HRNet-W32 pose V1 (random init), 256x192, batch 8. Every variant runs in one process on the
same input; the order rotates each repeat (load from other processes hits all alike) and the
load average is recorded before every repeat. Each variant's output is compared with the eager
fp32 model (max abs heatmap difference, and for low precision the share of joints whose heatmap
argmax moves). ``torch.profiler`` tables (top ops by self CPU time) are taken for timm eager, the
packaged program and the fastest variant.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hrnet.benchmarks.report import load_average, machine_info, utc_now
from hrnet.benchmarks.workload import build_ours, build_timm
from hrnet.predict.export import export_onnx, fold_batchnorm

SPEC = {
    "model": "hrnet_w32", "task": "pose", "head": "v1", "input_size": [256, 192], "num_outputs": 17,
    "timm_model": "hrnet_w32", "timm_feature_location": "incre", "timm": True,
}  # fmt: skip


def channels_last(module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    module = module.to(memory_format=torch.channels_last)
    return lambda x: module(x.contiguous(memory_format=torch.channels_last))


@torch.no_grad()
def calibrate_batchnorm(model: torch.nn.Module, example: torch.Tensor) -> torch.nn.Module:
    """BatchNorm statistics of ``example`` (cumulative average), so that the random-init network's
    activations have a trained network's scale (unit variance) rather than growing layer by layer."""
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.reset_running_stats()
            module.momentum = None
    model.train()(example)
    return model.eval()


def build(
    names: list[str], example: torch.Tensor, log: Callable[[str], None], calibrate: bool = False
) -> tuple[dict, dict]:
    ours = build_ours(SPEC).eval()
    if calibrate:
        calibrate_batchnorm(ours, example)
    folded = fold_batchnorm(ours)
    program = torch.export.export(folded, (example,), dynamic_shapes=({0: torch.export.Dim("b", max=64)},))
    tmp = Path(tempfile.mkdtemp(prefix="hrnet-opts-"))
    makers: dict[str, Callable[[], Callable]] = {
        "timm_eager": lambda: build_timm(SPEC).eval(),
        "ours_eager": lambda: ours,
        "packaged": lambda: program.module(),
        "folded_eager": lambda: folded,
        "folded_channels_last": lambda: channels_last(fold_batchnorm(ours)),
        "jit_freeze_optimize": lambda: torch.jit.optimize_for_inference(
            torch.jit.freeze(torch.jit.trace(fold_batchnorm(ours), example).eval())
        ),
        "jit_freeze_optimize_cl": lambda: _jit_cl(ours, example),
        "aoti": lambda: _aoti(program, tmp / "plain.pt2", {}),
        "aoti_freezing": lambda: _aoti(program, tmp / "frozen.pt2", {"freezing": True}),
        "aoti_freezing_max_autotune": lambda: _aoti(
            program, tmp / "autotune.pt2", {"freezing": True, "max_autotune": True}
        ),
        "bf16_channels_last": lambda: _bf16(ours),
        "onnxruntime": lambda: _ort(folded, example, tmp / "m.onnx", "ORT_ENABLE_ALL"),
        "onnxruntime_basic": lambda: _ort(folded, example, tmp / "m.onnx", "ORT_ENABLE_BASIC"),
    }
    variants, info = {}, {}
    for name in names:
        started = time.perf_counter()
        try:
            variants[name] = makers[name]()
            info[name] = {"build_s": round(time.perf_counter() - started, 1)}
        except Exception as exc:  # report and go on: an option torch or the machine does not allow
            info[name] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"}
            traceback.print_exc()
        log(f"built {name}: {info[name]}")
    return variants, info


def _jit_cl(ours: torch.nn.Module, example: torch.Tensor) -> Callable:
    model = fold_batchnorm(ours).to(memory_format=torch.channels_last)
    x = example.contiguous(memory_format=torch.channels_last)
    frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, x).eval()))
    return lambda t: frozen(t.contiguous(memory_format=torch.channels_last))


def _aoti(program: torch.export.ExportedProgram, path: Path, options: dict[str, Any]) -> Callable:
    path = torch._inductor.aoti_compile_and_package(program, package_path=str(path), inductor_configs=options)
    return torch._inductor.aoti_load_package(path)


def _bf16(ours: torch.nn.Module) -> Callable:
    model = fold_batchnorm(ours).to(torch.bfloat16, memory_format=torch.channels_last)
    return lambda x: model(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)).float()


def _ort(folded: torch.nn.Module, example: torch.Tensor, path: Path, level: str) -> Callable:
    import onnxruntime as ort

    if not path.exists():
        export_onnx(folded, example, path)
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, level)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: torch.from_numpy(session.run(None, {name: x.numpy()})[0])


def profile(fn: Callable, example: torch.Tensor, top: int) -> list[dict[str, Any]]:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    with torch.inference_mode(), torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        fn(example)
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1
    return [
        {
            "op": e.key,
            "self_cpu_ms": round(e.self_cpu_time_total / 1000, 1),
            "share": round(e.self_cpu_time_total / total, 3),
            "calls": e.count,
        }
        for e in events[:top]
    ]


def agreement(reference: torch.Tensor, output: torch.Tensor) -> dict[str, float]:
    """Heatmap differences, and where the joints land: each heatmap's argmax (the coarse keypoint)."""
    n, k, _, width = reference.shape
    ref_at, out_at = reference.reshape(n, k, -1).argmax(-1), output.reshape(n, k, -1).argmax(-1)
    distance = torch.hypot(
        (ref_at % width - out_at % width).float(), (ref_at // width - out_at // width).float()
    )
    return {
        "max_abs_diff": float((reference - output).abs().max()),
        "reference_max_abs": float(reference.abs().max()),
        "argmax_agreement": round(float((ref_at == out_at).float().mean()), 4),
        "argmax_distance_px_mean": round(float(distance.mean()), 3),
        "argmax_distance_px_max": round(float(distance.max()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--variants", default="")
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--calibrate-bn", action="store_true", help="BN statistics of the input batch")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    example = torch.randn(args.batch_size, 3, *SPEC["input_size"])
    names = args.variants.split(",") if args.variants else None
    started = utc_now()
    machine = machine_info(torch.device("cpu"))
    variants, info = build(names or list(_all_names()), example, print, args.calibrate_bn)
    with torch.inference_mode():
        reference = variants["ours_eager"](example) if "ours_eager" in variants else None
        for name, fn in variants.items():
            output = fn(example)  # also the warm-up
            if reference is not None:
                info[name].update(agreement(reference, output.float()))
        times: dict[str, list[float]] = {n: [] for n in variants}
        cpu: dict[str, list[float]] = {n: [] for n in variants}
        loads = []
        order = list(variants)
        for r in range(args.repeats):
            loads.append(load_average())
            for name in order[r % len(order) :] + order[: r % len(order)]:
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.steps):
                    variants[name](example)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
            print(f"repeat {r + 1}: load {loads[-1]} " + ", ".join(f"{n} {times[n][-1]:.2f}s" for n in order))
    base = statistics.median(times["timm_eager"]) if "timm_eager" in times else None
    base_cpu = statistics.median(cpu["timm_eager"]) if "timm_eager" in cpu else None
    images = args.batch_size * args.steps
    for name, spent in times.items():
        info[name]["images_per_s"] = round(images / statistics.median(spent), 3)
        info[name]["seconds_per_repeat"] = [round(t, 3) for t in spent]
        # CPU seconds of the process: with one thread, what the work costs whatever the load
        info[name]["cpu_images_per_s"] = round(images / statistics.median(cpu[name]), 3)
        info[name]["cpu_seconds_per_repeat"] = [round(t, 3) for t in cpu[name]]
        if base_cpu:
            info[name]["cpu_vs_timm_eager"] = round(base_cpu / statistics.median(cpu[name]), 3)
        if base:
            info[name]["vs_timm_eager"] = round(base / statistics.median(spent), 3)
            info[name]["vs_timm_eager_paired"] = round(
                statistics.median(b / t for b, t in zip(times["timm_eager"], spent)), 3
            )
    fastest = max(times, key=lambda n: info[n]["images_per_s"])
    profiles = {
        name: profile(variants[name], example, args.profile_top)
        for name in dict.fromkeys(["timm_eager", "packaged", fastest])
        if name in variants
    }
    report = {
        "kind": "inference_options", "started": started, "finished": utc_now(),
        "command": _command(args),
        "config": {**SPEC, "batch_size": args.batch_size, "threads": args.threads,
                   "repeats": args.repeats, "steps": args.steps, "weights": "random init, seed 0"
                   + (", BatchNorm statistics of the input" if args.calibrate_bn else "")},
        "machine": machine, "load_average_per_repeat": loads, "load_average_end": load_average(),
        "results": info, "profiles": profiles,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for name, entry in info.items():
        print(name, {k: v for k, v in entry.items() if not k.endswith("seconds_per_repeat")})
    for name, rows in profiles.items():
        print(
            f"profile {name}: "
            + "; ".join(f"{r['op']} {r['self_cpu_ms']} ms ({r['share']:.0%})" for r in rows)
        )
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")


def _command(args: argparse.Namespace) -> str:
    parts = ["python scripts/inference_options.py"]
    for key, value in vars(args).items():
        if value not in ("", None, False):
            parts.append(f"--{key.replace('_', '-')}" + ("" if value is True else f" {value}"))
    return " ".join(parts)


def _all_names() -> list[str]:
    return [
        "timm_eager", "ours_eager", "packaged", "folded_eager", "folded_channels_last",
        "jit_freeze_optimize", "jit_freeze_optimize_cl", "aoti", "aoti_freezing",
        "bf16_channels_last", "onnxruntime", "onnxruntime_basic",
    ]  # fmt: skip


if __name__ == "__main__":
    main()
