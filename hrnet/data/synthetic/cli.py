"""The options every synthetic generator's ``python -m`` command line shares."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def parser(
    doc: str | None,
    num_train: int,
    num_val: int,
    size: tuple[int, int],
    per_image: tuple[str, int, int] | None = None,
) -> argparse.ArgumentParser:
    """``--root --num-train --num-val --seed --width --height`` with these defaults; add the rest.

    ``per_image`` ``(things, lo, hi)`` adds ``--min-<things>`` and ``--max-<things>``.
    """
    p = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--num-train", type=int, default=num_train)
    p.add_argument("--num-val", type=int, default=num_val)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=int, default=size[0])
    p.add_argument("--height", type=int, default=size[1])
    if per_image is not None:
        things, lo, hi = per_image
        p.add_argument(f"--min-{things}", type=int, default=lo)
        p.add_argument(f"--max-{things}", type=int, default=hi)
    return p


def print_summary(summary: dict) -> None:
    print(json.dumps(summary, indent=2))
