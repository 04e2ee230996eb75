"""The table ``hrnet bench`` prints: ours next to timm's, one column each, and their ratio."""

from __future__ import annotations

import math
from typing import Any

from hrnet.benchmarks.report import align_rows


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
    return "\n".join(lines + align_rows(rows, left_columns=1))
