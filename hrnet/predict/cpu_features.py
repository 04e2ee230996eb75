"""What this CPU offers for low-precision inference, read from ``/proc/cpuinfo``.

bf16 is fast on a CPU only with native bf16 arithmetic: AVX512_BF16 (``avx512_bf16``, dot products
of bf16 pairs) or AMX (``amx_bf16``, tile matrix multiplies). Without them oneDNN converts bf16 to
fp32 and back around every operation, and a bf16 model runs slower than the fp32 one (measured
7x slower on an AVX2-only host, ``benchmarks/RESULTS.md``). int8 convolutions are fastest with
AVX512_VNNI / AVX_VNNI (``avx512_vnni``, ``avx_vnni``, one instruction per 4 int8 products).
"""

from __future__ import annotations

import platform
from pathlib import Path

# what the bench table and the bf16 refusal name, and the /proc/cpuinfo flag of each
FEATURES: dict[str, str] = {
    "AVX2": "avx2",
    "AVX512": "avx512f",
    "AVX512_VNNI": "avx512_vnni",
    "AVX_VNNI": "avx_vnni",
    "AVX512_BF16": "avx512_bf16",
    "AMX": "amx_bf16",
}
NATIVE_BF16 = ("AVX512_BF16", "AMX")


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The flags of the first processor in ``cpuinfo``; empty where there is no such file (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> dict[str, bool]:
    """``{"AVX2": True, "AVX512": False, ...}`` for every name in :data:`FEATURES`."""
    flags = cpu_flags(cpuinfo)
    return {name: flag in flags for name, flag in FEATURES.items()}


def native_bf16(features: dict[str, bool]) -> bool:
    return any(features.get(name, False) for name in NATIVE_BF16)


def describe(features: dict[str, bool]) -> str:
    """One line: the CPU model and each feature as ``AVX2 yes``."""
    model = platform.processor() or platform.machine()
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.partition(":")[2].strip()
            break
    return f"{model}: " + ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in features.items())


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
