"""What the tune tests share: a local Ray's home and the trials table."""

from __future__ import annotations

import contextlib
import csv
import os
from collections.abc import Iterator
from pathlib import Path

from pipeline.tune_report import TRIALS_CSV


def read_trials(out_dir: Path, name: str = TRIALS_CSV) -> list[dict[str, str]]:
    with open(out_dir / name, newline="") as handle:
        return list(csv.DictReader(handle))


@contextlib.contextmanager
def users_home(home: Path) -> Iterator[None]:
    """A local Ray keeps its token in ~/.ray/auth_token: here under ``home``, not the real home."""
    environ = dict(os.environ)  # Ray also sets RAY_AUTH_MODE in this process: undone after
    try:
        os.environ["HOME"] = str(home)
        os.environ.pop("RAY_ADDRESS", None)  # address null: a Ray of our own
        yield
    finally:
        os.environ.clear()
        os.environ.update(environ)
