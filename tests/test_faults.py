"""Faults and untrusted files: unsafe or corrupt checkpoints, tampered packages, killed writers."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from conftest import ROOT, tiny_params

from hrnet.io import atomic_write_json, sha256_file
from hrnet.package import PackageError, load_package
from pipeline.common import run_stage
from pipeline.evaluate import evaluate
from pipeline.package import package

# ----------------------------------------------------------------------------- checkpoints
MARKER = "payload-ran"


class _Trap:
    """Unpickling this creates the file MARKER (what an attacker's payload would do instead)."""

    def __reduce__(self) -> tuple[Callable[..., object], tuple[str, str]]:
        return open, (MARKER, "w")


def _pickled_callable(path: Path) -> None:
    torch.save({"state_dict": {}, "hook": os.system, "payload": _Trap()}, path)


def _truncated(path: Path) -> None:
    torch.save({"state_dict": {"weight": torch.zeros(256)}}, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _garbage(path: Path) -> None:
    path.write_bytes(b"\x80\x02garbage, not a checkpoint" * 40)


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _foreign_weights(path: Path) -> None:
    torch.save({"state_dict": {"weight": torch.zeros(3)}}, path)  # safe to load, but not our model


CHECKPOINT_CASES = [
    ("pickled-callable", _pickled_callable, "refusing to load a checkpoint that is not weights-only"),
    ("truncated", _truncated, "corrupt or truncated checkpoint"),
    ("garbage", _garbage, "corrupt or truncated checkpoint"),
    ("empty", _empty, "corrupt or truncated checkpoint"),
    ("foreign-weights", _foreign_weights, "corrupt or incompatible checkpoint"),
]


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize(
    ("write", "fragment"), [c[1:] for c in CHECKPOINT_CASES], ids=[c[0] for c in CHECKPOINT_CASES]
)
@pytest.mark.parametrize("stage", [evaluate, package], ids=["evaluate", "package"])
def test_bad_checkpoint_is_refused_with_one_line_naming_it(
    stage: Callable[..., object],
    write: Callable[[Path], None],
    fragment: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_params(), sort_keys=False))
    (tmp_path / "models").mkdir()
    write(tmp_path / "models" / "model.ckpt")
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "metrics.json").write_text('{"AP": 0.5}\n')  # package's other input
    before = _tree(tmp_path)

    with pytest.raises(SystemExit) as exit_info:
        run_stage(stage)  # type: ignore[arg-type]

    assert exit_info.value.code == 2
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr
    assert errors[0].startswith(f"error: {Path('models/model.ckpt')}: {fragment}"), errors[0]
    assert not (tmp_path / MARKER).exists(), "the checkpoint's pickled payload was executed"
    assert _tree(tmp_path) == before


# ----------------------------------------------------------------------------- packages
def _fake_package(root: Path) -> Path:
    """A package folder whose files and SHA256SUMS agree (the program itself is a placeholder)."""
    root.mkdir()
    (root / "model.pt2").write_bytes(b"placeholder program bytes " * 64)
    (root / "package.json").write_text(
        json.dumps({"format": 1, "program": "model.pt2", "input_size": [64, 64]})
    )
    sums = "".join(f"{sha256_file(root / name)}  {name}\n" for name in ("model.pt2", "package.json"))
    (root / "SHA256SUMS").write_text(sums)
    return root


def test_byte_flipped_package_is_refused_before_anything_is_deserialised(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("torch.export.load ran on an unverified package")

    monkeypatch.setattr(torch.export, "load", never)
    for name in ("model.pt2", "package.json"):
        root = _fake_package(tmp_path / name)
        data = bytearray((root / name).read_bytes())
        data[len(data) // 2] ^= 0x01
        (root / name).write_bytes(bytes(data))
        with pytest.raises(PackageError, match=rf"{name}: SHA-256 does not match SHA256SUMS"):
            load_package(root)


# ----------------------------------------------------------------------------- killed writers
_WRITER = r"""
import importlib.util, sys, time

spec = importlib.util.spec_from_file_location("hrnet_io", sys.argv[1])
io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(io)  # hrnet/io.py alone: no torch import, starts fast
target, mode = sys.argv[2], sys.argv[3]
huge = {"AP": 0.25, "per_image": [[i, i / 7, "x" * 32] for i in range(60_000)]}
if mode == "stall-before-sync":

    def stall(fd):
        print("written", flush=True)
        time.sleep(300)

    io.os.fsync = stall  # all bytes are in the temporary file; rename has not happened
print("writing", flush=True)
while True:
    io.atomic_write_json(target, huge)
"""


def _spawn_writer(target: Path, mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(ROOT / "hrnet" / "io.py"), str(target), mode],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.001)


def _strays(reports: Path) -> list[Path]:
    return sorted(reports.glob(".metrics.json.*.tmp"))


def _write_in_progress(reports: Path) -> bool:
    for stray in _strays(reports):
        try:
            if stray.stat().st_size > 0:
                return True
        except FileNotFoundError:  # renamed into place meanwhile
            pass
    return False


@pytest.mark.parametrize("mode", ["stall-before-sync", "loop"])
def test_sigkill_while_writing_metrics_keeps_a_whole_file(tmp_path: Path, mode: str) -> None:
    reports = tmp_path / "reports"
    metrics = reports / "metrics.json"
    previous = {"AP": 0.5, "AR": 0.6}
    atomic_write_json(metrics, previous)

    child = _spawn_writer(metrics, mode)
    try:
        assert child.stdout is not None
        if mode == "stall-before-sync":
            assert child.stdout.readline().strip() == "writing"
            assert child.stdout.readline().strip() == "written"
        else:
            _wait_for(lambda: _write_in_progress(reports))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    current = json.loads(metrics.read_text())  # always a whole, parseable file
    if mode == "stall-before-sync":
        assert current == previous
        (stray,) = _strays(reports)
        assert stray.stat().st_size > 0  # the killed write, under a hidden temporary name
    else:
        assert current == previous or (current["AP"] == 0.25 and len(current["per_image"]) == 60_000)
    # the leftover is hidden and not a .json file: no glob or DVC metrics path picks it up
    assert [p.name for p in reports.glob("*.json")] == ["metrics.json"]
    assert all(p.name.startswith(".") and p.suffix == ".tmp" for p in reports.iterdir() if p != metrics)

    atomic_write_json(metrics, {"AP": 0.75})  # the next run is not disturbed by the leftover
    assert json.loads(metrics.read_text()) == {"AP": 0.75}
