"""Peak training memory of one model, measured alone in a fresh ``spawn`` subprocess.

CUDA: ``torch.cuda.max_memory_allocated`` (parameters, gradients, Adam state, activations). CPU:
the peak resident set size during the steps minus the resident size before the model is built
(``VmHWM`` reset through ``/proc/self/clear_refs`` where allowed, else ``ru_maxrss``), which
includes the allocator's caching and oneDNN's scratch buffers: what the OS has to provide.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
import os
import resource
from pathlib import Path
from typing import Any

import torch

from hrnet.benchmarks.workload import configure_device

MEMORY_METHOD = {
    "cuda": "torch.cuda.max_memory_allocated in a fresh subprocess holding only this model "
    "(parameters + gradients + Adam state + activations), warm-up + 1 train step",
    "cpu": "peak RSS during warm-up + 1 train step minus RSS before the model was built, in a fresh "
    "subprocess holding only this model (VmHWM reset via /proc/self/clear_refs, else ru_maxrss); "
    "includes allocator caching",
}


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


# The workload class a probe builds, as a "module:attribute" reference (picklable into the subprocess)
DENSE_WORKLOAD = "hrnet.benchmarks.workload:Workload"


def memory_probe(
    kind: str,
    spec: dict[str, Any],
    device_name: str,
    threads: int,
    warmup: int,
    workload_class: str = DENSE_WORKLOAD,
) -> dict[str, Any]:
    """Peak memory of the training step of one model, alone in this (fresh) process.
    ``workload_class`` builds it: ``Workload(kind, spec, device)`` with ``run("train", steps)``."""
    from hrnet.registry import resolve

    Workload = resolve(workload_class)  # noqa: N806 (a class)
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
    kind: str,
    spec: dict[str, Any],
    device: torch.device,
    threads: int,
    warmup: int,
    workload_class: str = DENSE_WORKLOAD,
) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(1) as pool:
        return pool.apply(memory_probe, (kind, spec, str(device), threads, warmup, workload_class))
