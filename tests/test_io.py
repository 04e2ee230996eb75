"""Crash-safe outputs (hrnet/io.py) are ordinary files once in place."""

from __future__ import annotations

import stat
from pathlib import Path

from hrnet.io import atomic_directory, atomic_write_json


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_outputs_get_the_permissions_any_new_file_or_folder_gets(tmp_path: Path) -> None:
    """Temporary files are made private (0600, 0700); the outputs they become must not stay so, or a
    team sharing a project or a model store could not read each other's metrics and packages."""
    plain_file, plain_dir = tmp_path / "plain.json", tmp_path / "plain"
    plain_file.write_text("{}")
    plain_dir.mkdir()
    assert mode(plain_file) & 0o044, "this test needs a umask that lets others read (022, 002)"

    atomic_write_json(tmp_path / "metrics.json", {"AP": 0.5})
    with atomic_directory(tmp_path / "package") as folder:
        (folder / "model.pt").write_bytes(b"weights")

    assert mode(tmp_path / "metrics.json") == mode(plain_file)
    assert mode(tmp_path / "package") == mode(plain_dir)
    assert mode(tmp_path / "package" / "model.pt") == mode(plain_file)
