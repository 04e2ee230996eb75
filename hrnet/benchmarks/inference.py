"""``hrnet bench --inference``: how fast the packaged model runs, next to timm's HRNet, eager.

Compared in one process at the same batch, input size and thread count, interleaved (the order
rotates every repeat so load from other processes hits every variant about equally):

* ``timm_eager``: timm's HRNet (``features_only``) with our head, ``torch.inference_mode``;
* ``ours_eager``: our model as trained, eval mode;
* ``packaged``: what a torch package holds and ``hrnet predict`` runs: BatchNorm folded,
  ``torch.export``-ed, called eagerly in channels_last (``TorchRunner``);
* ``packaged_aoti``: that exported program compiled ahead of time by AOTInductor (when it compiles);
* ``onnxruntime``: the ONNX package's model.onnx (BatchNorm folded) in onnxruntime, CPU provider;
* ``onnxruntime_int8``: what a ``package.precision: int8`` package holds: that graph quantized
  (QDQ, per-channel int8 weights, uint8 activations; calibrated here on random inputs, which
  sets the scales but not the speed);
* ``packaged_bf16``: what a ``package.precision: bf16`` package runs: ``packaged`` under CPU bf16
  autocast.

``--sweep`` measures these over the W32 pose and W18-small segmentation cases, batch 1 and 8,
1 and 2 threads, in one table (:mod:`hrnet.benchmarks.inference_sweep`).

Reported: the median images/s of each over the repeats, and each one's ratio to ``timm_eager``
(ratio of the medians and median of the per-repeat ratios); also per CPU second of the process
(``cpu_*``), which on a shared machine with one thread measures the work, not the wait.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from hrnet.benchmarks.report import RESULTS_DIR, machine_info, make_report, utc_now, write_and_print
from hrnet.benchmarks.workload import build_ours, build_timm
from hrnet.errors import InputError
from hrnet.models.registries import TASK_MODELS

Runner = Callable[[torch.Tensor], Any]


def build_artifacts(
    spec: dict[str, Any], example: torch.Tensor, log: Callable[[str], None], compile_aoti: bool, workdir: Path
) -> dict[str, Any]:
    """Everything the variants run, built once per model: the eager models, the folded exported
    program, the AOTInductor package, the fp32 and int8 ONNX graphs (files in ``workdir``, which the
    caller removes after timing); ``notes`` says what failed."""
    from hrnet.predict.export import export_onnx, fold_batchnorm

    ours = build_ours(spec).eval()
    built: dict[str, Any] = {"ours_eager": ours, "notes": {}}
    if spec["timm"]:
        built["timm_eager"] = build_timm(spec).eval()
    folded = fold_batchnorm(ours)
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(folded, (example,), dynamic_shapes=({0: batch},))
    built["program"] = program.module()
    if compile_aoti:
        started = time.perf_counter()
        try:
            path = torch._inductor.aoti_compile_and_package(program, package_path=str(workdir / "model.pt2"))
            built["packaged_aoti"] = torch._inductor.aoti_load_package(path)
            built["notes"]["packaged_aoti"] = f"compiled in {time.perf_counter() - started:.0f} s"
        except Exception as exc:  # a missing compiler or an unsupported op: report, keep going
            built["notes"]["packaged_aoti"] = (
                f"not compiled: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
            )
        log(f"  AOTInductor: {built['notes']['packaged_aoti']}")
    try:
        export_onnx(folded, example, workdir / "model.onnx")
        built["onnx"] = workdir / "model.onnx"
    except ImportError as exc:
        built["notes"]["onnxruntime"] = f"not run: {exc}"
        return built
    if spec.get("int8", True):
        from hrnet.predict.quantize import quantize_int8

        int8 = workdir / "int8" / "model.onnx"
        int8.parent.mkdir()
        int8.write_bytes(built["onnx"].read_bytes())
        calibration = torch.randn(8, *example.shape[1:], generator=torch.Generator().manual_seed(1))
        quantize_int8(int8, calibration)
        built["onnx_int8"] = int8
    return built


def variants(built: dict[str, Any], threads: int, bf16: bool = True) -> dict[str, Runner]:
    """The runners of ``built`` at ``threads`` intra-op threads (onnxruntime's are fixed per session)."""
    from hrnet.predict.runtime import OnnxRunner, TorchRunner

    runners: dict[str, Runner] = {}
    if "timm_eager" in built:
        runners["timm_eager"] = built["timm_eager"]
    runners["ours_eager"] = built["ours_eager"]
    runners["packaged"] = TorchRunner(built["program"])
    if "packaged_aoti" in built:
        runners["packaged_aoti"] = built["packaged_aoti"]
    if "onnx" in built:
        runners["onnxruntime"] = OnnxRunner(built["onnx"], threads=threads)
    if "onnx_int8" in built:
        runners["onnxruntime_int8"] = OnnxRunner(built["onnx_int8"], threads=threads)
    if bf16:
        runners["packaged_bf16"] = TorchRunner(built["program"], autocast=True)
    return runners


def time_variants(
    runners: dict[str, Runner], example: torch.Tensor, args: argparse.Namespace, log: Callable[[str], None]
) -> dict[str, Any]:
    """Median images/s (and per CPU second) of each runner, interleaved, with ratios to timm's."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    with torch.inference_mode():
        for name in names:
            for _ in range(args.warmup):
                runners[name](example)
        for r in range(args.repeats):
            for name in names[r % len(names) :] + names[: r % len(names)]:
                start, start_cpu = time.perf_counter(), time.process_time()
                for _ in range(args.infer_steps):
                    runners[name](example)
                times[name].append(time.perf_counter() - start)
                cpu[name].append(time.process_time() - start_cpu)
            rates = (f"{n} {len(example) * args.infer_steps / times[n][-1]:.2f}" for n in names)
            log(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(rates) + " img/s")
    images = len(example) * args.infer_steps
    base, base_cpu = times.get("timm_eager"), cpu.get("timm_eager")
    results = {}
    for name in names:
        entry: dict[str, Any] = {
            "images_per_s": round(images / statistics.median(times[name]), 3),
            "cpu_images_per_s": round(images / statistics.median(cpu[name]), 3),
            "seconds_per_repeat": [round(t, 3) for t in times[name]],
            "cpu_seconds_per_repeat": [round(t, 3) for t in cpu[name]],
        }
        if base and base_cpu:
            entry["cpu_vs_timm_eager"] = round(statistics.median(base_cpu) / statistics.median(cpu[name]), 3)
            entry["vs_timm_eager"] = round(statistics.median(base) / statistics.median(times[name]), 3)
            entry["vs_timm_eager_paired"] = round(
                statistics.median(b / t for b, t in zip(base, times[name])), 3
            )
        results[name] = entry
    return results


def benchmark(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict[str, Any]:
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    height, width = args.input_size
    spec = {
        "model": args.model, "task": args.task, "head": args.head, "input_size": [height, width],
        "num_outputs": args.num_outputs or TASK_MODELS.get(args.task).default_outputs,
        "timm_model": args.timm_model or args.model, "timm_feature_location": args.timm_feature_location,
        "timm": not args.no_timm, "batch_size": args.batch_size,
    }  # fmt: skip
    started = utc_now()
    example = torch.randn(args.batch_size, 3, height, width, generator=torch.Generator().manual_seed(0))
    log(f"building {args.model} {args.task}/{args.head} {height}x{width} variants, batch {args.batch_size}")
    with tempfile.TemporaryDirectory(prefix="hrnet-bench-") as workdir:
        built = build_artifacts(spec, example, log, not args.no_compile, Path(workdir))
        results = time_variants(variants(built, threads), example, args, log)
    notes = built["notes"]
    return make_report(
        "inference", _command(args), started, machine_info(torch.device("cpu")),
        config={**spec, "threads": threads, "repeats": args.repeats, "infer_steps": args.infer_steps,
                "warmup": args.warmup},
        results=results, notes=notes,
    )  # fmt: skip


def _command(args: argparse.Namespace) -> str:
    parts = [
        "hrnet bench --inference", f"--model {args.model} --task {args.task} --head {args.head}",
        f"--input-size {args.input_size[0]} {args.input_size[1]} --batch-size {args.batch_size}",
        f"--warmup {args.warmup} --repeats {args.repeats} --infer-steps {args.infer_steps}",
    ]  # fmt: skip
    if args.threads:
        parts.append(f"--threads {args.threads}")
    if args.no_compile:
        parts.append("--no-compile")
    return " ".join(parts)


def format_table(report: dict[str, Any]) -> str:
    config = report["config"]
    lines = [
        f"{config['model']} {config['task']}/{config['head']} {'x'.join(map(str, config['input_size']))}, "
        f"batch {config['batch_size']}, {config['threads']} thread(s)",
        "| variant | images/s | vs timm eager | paired | images per CPU s | CPU vs timm eager |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in report["results"].items():
        lines.append(
            f"| {name} | {entry['images_per_s']:.2f} | {entry.get('vs_timm_eager', '-')} "
            f"| {entry.get('vs_timm_eager_paired', '-')} | {entry.get('cpu_images_per_s', '-')} "
            f"| {entry.get('cpu_vs_timm_eager', '-')} |"
        )
    lines += [f"{name}: {note}" for name, note in report.get("notes", {}).items()]
    return "\n".join(lines)


def check_args(args: argparse.Namespace) -> None:
    """One-line refusal of counts that cannot be timed (the single case and the sweep alike)."""
    if min(args.batch_size, args.repeats, args.infer_steps) < 1 or args.warmup < 0:
        raise InputError("--batch-size, --repeats and --infer-steps must be >= 1, --warmup >= 0")


def run(args: argparse.Namespace) -> int:
    """One case (``--sweep`` runs :func:`hrnet.benchmarks.inference_sweep.run` instead, from the
    ``hrnet bench`` dispatcher)."""
    check_args(args)
    report = benchmark(args, log=(lambda _m: None) if args.json else print)
    name = f"inference_{args.model}_{args.task}_{args.head}_{args.input_size[0]}x{args.input_size[1]}"
    out = args.out or RESULTS_DIR / f"{name}_b{args.batch_size}_t{report['config']['threads']}.json"
    write_and_print(report, Path(out), format_table, args.json)
    return 0
