"""What every benchmark report shares: the machine, the run's header, the table and the JSON file."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

RESULTS_DIR = Path("benchmarks") / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> list[float] | None:
    with contextlib.suppress(OSError):
        return [round(v, 2) for v in os.getloadavg()]
    return None


def machine_info(device: torch.device | None = None) -> dict[str, Any]:
    """CPU, thread settings, versions and load; GPU and cuDNN settings when ``device`` is CUDA."""
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
        "load_average": load_average(),
    }
    if device is not None:
        info["device"] = str(device)
        if device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(device)
            info["cuda"] = torch.version.cuda
            info["cudnn"] = torch.backends.cudnn.version()
            info["cudnn_benchmark"] = torch.backends.cudnn.benchmark
            info["cudnn_allow_tf32"] = torch.backends.cudnn.allow_tf32
            info["matmul_allow_tf32"] = torch.backends.cuda.matmul.allow_tf32
    return info


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def make_report(
    name: str, command: str, started: datetime, machine: dict[str, Any], **sections: Any
) -> dict[str, Any]:
    """The JSON report: what ran (the reproducing command and argv), when, where, then ``sections``."""
    machine = {**machine, "load_average_end": load_average()}
    return {
        "benchmark": name,
        "command": command,
        "argv": list(sys.argv),
        "started_utc": started.isoformat(timespec="seconds"),
        "duration_s": round((utc_now() - started).total_seconds(), 1),
        "machine": machine,
        **sections,
    }


def align_rows(rows: Sequence[Sequence[str]], left_columns: int = 1) -> list[str]:
    """Rows as lines of columns padded to a common width; the first ``left_columns`` left-aligned."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(c.ljust(widths[i]) if i < left_columns else c.rjust(widths[i]) for i, c in enumerate(row))
        for row in rows
    ]


def progress_log(quiet: bool) -> Callable[[str], None]:
    return (lambda _msg: None) if quiet else (lambda msg: print(msg, flush=True))


def write_and_print(
    report: dict[str, Any], out: Path, format_table: Callable[[dict[str, Any]], str], as_json: bool
) -> None:
    """Writes ``report`` to ``out`` atomically, then prints either the JSON or the table."""
    from hrnet.io import atomic_write_json

    atomic_write_json(out, report)
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        print()
        print(format_table(report))
        print(f"\nwrote {out}")
