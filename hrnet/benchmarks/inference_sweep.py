"""``hrnet bench --inference --sweep``: one table of packaged inference at every precision.

Cases: HRNet-W32 pose (V1 head) at 256x192 and HRNet-W18-small segmentation (V2 head) at
``--seg-size`` (default 256x512; timm with plain branch maps, as ours), each at batch 1 and 8 and
1 and 2 threads. Per case the
variants of :mod:`hrnet.benchmarks.inference` run interleaved in this process (timm eager fp32,
our eager fp32, our torch package fp32, the ONNX package fp32 and int8, the torch package under
bf16 autocast), so each row's ratio to timm eager comes from the same run. The CPU's features
(AVX2, AVX512, AVX512_VNNI, AVX512_BF16, AMX) head the table: int8 needs VNNI and bf16 needs
AVX512_BF16 or AMX to be fast.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hrnet.benchmarks.inference import build_artifacts, time_variants, variants
from hrnet.benchmarks.report import RESULTS_DIR, machine_info, make_report, utc_now, write_and_print
from hrnet.models.registries import TASK_MODELS
from hrnet.predict.cpu_features import cpu_features, describe

LABELS = {
    "timm_eager": "timm eager fp32",
    "ours_eager": "ours eager fp32",
    "packaged": "torch package fp32",
    "packaged_aoti": "torch package AOTInductor fp32",
    "onnxruntime": "ONNX package fp32",
    "onnxruntime_int8": "ONNX package int8",
    "packaged_bf16": "torch package bf16",
}


def cases(args: argparse.Namespace) -> list[dict[str, Any]]:
    seg_h, seg_w = args.seg_size
    return [
        {"model": "hrnet_w32", "task": "pose", "head": "v1", "input_size": [256, 192]},
        # timm's default "incre" maps would give the V2 head 1920 input channels instead of 270 (it
        # concatenates every branch): "plain" keeps the two models the same network
        {"model": "hrnet_w18_small", "task": "segmentation", "head": "v2", "input_size": [seg_h, seg_w],
         "timm_feature_location": "plain"},
    ]  # fmt: skip


def sweep(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    features = cpu_features()
    log(describe(features))
    started = utc_now()
    rows = []
    for case in cases(args):
        height, width = case["input_size"]
        spec = {
            **case, "num_outputs": TASK_MODELS.get(case["task"]).default_outputs, "timm_model": case["model"],
            "timm_feature_location": args.timm_feature_location, "timm": True, **case,
        }  # fmt: skip
        log(f"building {case['model']} {case['task']}/{case['head']} {height}x{width}")
        with tempfile.TemporaryDirectory(prefix="hrnet-bench-") as workdir:
            export_example = torch.randn(2, 3, height, width)
            built = build_artifacts(spec, export_example, log, compile_aoti=False, workdir=Path(workdir))
            for threads in args.sweep_threads:
                torch.set_num_threads(threads)
                runners = variants(built, threads)
                for batch in args.sweep_batches:
                    example = torch.randn(batch, 3, height, width, generator=torch.Generator().manual_seed(0))
                    log(f"{case['model']} {case['task']}: batch {batch}, {threads} thread(s)")
                    results = time_variants(runners, example, args, log)
                    rows.append({**case, "batch_size": batch, "threads": threads, "results": results})
    return make_report(
        "inference_sweep", _command(args), started, machine_info(torch.device("cpu")),
        config={"cpu_features": features, "repeats": args.repeats, "infer_steps": args.infer_steps,
                "warmup": args.warmup, "batches": args.sweep_batches, "threads": args.sweep_threads},
        results=rows, notes=built["notes"],
    )  # fmt: skip


def _command(args: argparse.Namespace) -> str:
    return (
        f"hrnet bench --inference --sweep --seg-size {args.seg_size[0]} {args.seg_size[1]} "
        f"--sweep-batches {' '.join(map(str, args.sweep_batches))} "
        f"--sweep-threads {' '.join(map(str, args.sweep_threads))} "
        f"--warmup {args.warmup} --repeats {args.repeats} --infer-steps {args.infer_steps}"
    )


def format_table(report: dict[str, Any]) -> str:
    features = report["config"]["cpu_features"]
    lines = [
        "CPU features: " + ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in features.items()),
        "| model | input | batch | threads | variant | img/s | vs timm (paired) | img/CPU s | CPU vs timm |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        size = "x".join(map(str, row["input_size"]))
        for name, entry in row["results"].items():
            lines.append(
                f"| {row['model']} {row['task']} | {size} | {row['batch_size']} | {row['threads']} "
                f"| {LABELS.get(name, name)} | {entry['images_per_s']:.2f} "
                f"| {entry.get('vs_timm_eager', '-')}x ({entry.get('vs_timm_eager_paired', '-')}x) "
                f"| {entry['cpu_images_per_s']:.2f} | {entry.get('cpu_vs_timm_eager', '-')}x |"
            )
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    report = sweep(args, log=(lambda _m: None) if args.json else print)
    out = args.out or RESULTS_DIR / "inference_sweep.json"
    write_and_print(report, Path(out), format_table, args.json)
    return 0
