"""What the tune stage writes to ``reports/tune``: trials.csv, curves.png, best.yaml, best_command.txt.

Independent of Ray: the stage turns its results into :class:`TrialRow` objects first, so everything
here is plain data in, files out (each written atomically).
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hrnet.io import atomic_path, atomic_write_text

log = logging.getLogger("pipeline.tune")

TRIALS_CSV = "trials.csv"
CURVES_PNG = "curves.png"
BEST_YAML = "best.yaml"
BEST_COMMAND = "best_command.txt"

COMPLETED, STOPPED, ERROR = "completed", "stopped_early", "error"
# The stage a winner is reproduced with: `dvc exp run train` trains it (after prepare, if needed)
# without rerunning the sweep, which depends on the same params sections.
REPRODUCE_TARGET = "train"


@dataclass
class TrialRow:
    """One trial as reported: its sampled values, metric per epoch and how it ended."""

    trial_id: str
    config: dict[str, Any]  # dotted params key -> sampled value
    curve: list[float] = field(default_factory=list)  # the metric after each epoch
    status: str = COMPLETED
    retries: int | None = None  # failed attempts before the last one
    node_ip: str | None = None
    node_id: str | None = None  # Ray's node ID: unique per node, unlike node_ip
    pid: int | None = None
    error: str | None = None

    @property
    def iterations(self) -> int:
        return len(self.curve)

    @property
    def final(self) -> float | None:
        return self.curve[-1] if self.curve else None

    def best(self, mode: str) -> float | None:
        values = [v for v in self.curve if not math.isnan(v)]
        if not values:
            return None
        return min(values) if mode == "min" else max(values)


def status_of(curve: Sequence[float], errored: bool, max_t: int) -> str:
    if errored:
        return ERROR
    return COMPLETED if len(curve) >= max_t else STOPPED


def rank(rows: Sequence[TrialRow], mode: str) -> list[TrialRow]:
    """Best first: trials that ran every epoch by their final metric, then stopped ones, then failures.

    Only a trial that ran the full budget can win: its final metric is comparable with the others'
    and a train run of ``tune.epochs`` epochs reproduces it exactly.
    """
    order = {COMPLETED: 0, STOPPED: 1, ERROR: 2}
    sign = 1.0 if mode == "min" else -1.0

    def key(row: TrialRow) -> tuple[int, float, str]:
        final = row.final
        usable = final is not None and not math.isnan(final)
        return (order[row.status] if usable else 3, sign * final if usable else 0.0, row.trial_id)

    return sorted(rows, key=key)


def yaml_value(value: Any) -> str:
    """A value as ``-S key=value`` writes it: YAML that reads back as the same Python value."""
    if isinstance(value, float) and math.isfinite(value):
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if e and "." not in mantissa:  # 1e-05 is a string to YAML 1.1 readers; 1.0e-05 is a float
            text = f"{mantissa}.0e{exponent}"
        return text
    return json.dumps(value)


def exp_run_command(overrides: Mapping[str, Any], target: str = REPRODUCE_TARGET) -> str:
    """The one-line ``dvc exp run`` that sets every override (dotted key -> value)."""
    args = " ".join(f"-S {shlex.quote(f'{key}={yaml_value(value)}')}" for key, value in overrides.items())
    return f"dvc exp run {target} {args}".rstrip()


def nest(dotted: Mapping[str, Any]) -> dict[str, Any]:
    """``{"pose.lr": 1}`` -> ``{"pose": {"lr": 1}}``: a params.yaml fragment."""
    tree: dict[str, Any] = {}
    for key, value in dotted.items():
        node = tree
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_trials_csv(path: Path, rows: Sequence[TrialRow], metric: str, mode: str) -> None:
    """Every trial, best first; search values are JSON (``json.loads`` reads them back)."""
    keys = sorted({key for row in rows for key in row.config})
    header = ["rank", "trial_id", "status", "iterations", "retries", f"{metric} final", f"{metric} best"]
    header += [*keys, "node_ip", "node_id", "pid", "error"]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for position, row in enumerate(rows, start=1):
            values = [json.dumps(row.config[key]) if key in row.config else "" for key in keys]
            writer.writerow(
                [
                    position,
                    row.trial_id,
                    row.status,
                    row.iterations,
                    _cell(row.retries),
                    _cell(row.final),
                    _cell(row.best(mode)),
                    *values,
                    _cell(row.node_ip),
                    _cell(row.node_id),
                    _cell(row.pid),
                    _cell(row.error),
                ]
            )


def write_curves(path: Path, rows: Sequence[TrialRow], metric: str, winner: TrialRow | None) -> bool:
    """The metric per trial over epochs; skipped (False) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed: skipping %s", path)
        return False
    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=100)
    for row in rows:
        if not row.curve:
            continue
        epochs = range(1, len(row.curve) + 1)
        is_winner = winner is not None and row.trial_id == winner.trial_id
        label = f"{row.trial_id} ({row.status})" + (" best" if is_winner else "")
        axes.plot(epochs, row.curve, marker="o", linewidth=2.5 if is_winner else 1.0, label=label)
    axes.set_xlabel("epoch")
    axes.set_ylabel(metric)
    axes.set_title(f"{metric} per trial")
    axes.grid(alpha=0.3)
    if axes.lines:
        axes.legend(fontsize=7)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return True


def write_best(
    out_dir: Path,
    winner: TrialRow,
    budget: Mapping[str, Any],
    metric: str,
    mode: str,
    num_trials: int,
) -> str:
    """best.yaml (the winner's searched values as a params fragment) and best_command.txt.

    ``budget`` are the train.* values every trial ran with where they differ from params.yaml
    (e.g. ``train.epochs``): the command sets them too, so that it reproduces the winner's metric.
    Returns the command.
    """
    command = exp_run_command({**winner.config, **budget})
    header = (
        f"# Best of {num_trials} trials by {metric} ({mode}): {winner.final!r} after "
        f"{winner.iterations} epochs (trial {winner.trial_id}).\n"
        f"# Reproduce it: {command}\n"
    )
    if budget:
        header += f"# (the trials' budget: {', '.join(f'{k}={yaml_value(v)}' for k, v in budget.items())})\n"
    body = yaml.safe_dump(nest(winner.config), sort_keys=False, default_flow_style=False)
    atomic_write_text(out_dir / BEST_YAML, header + body)
    atomic_write_text(out_dir / BEST_COMMAND, command + "\n")
    return command


def write_reports(
    out_dir: Path,
    rows: Sequence[TrialRow],
    metric: str,
    mode: str,
    budget: Mapping[str, Any],
) -> tuple[TrialRow, str]:
    """Writes every report of ``rows`` (ranked by :func:`rank`); returns the winner and its command."""
    ranked = rank(rows, mode)
    winner = ranked[0] if ranked else None
    if winner is None or winner.final is None or math.isnan(winner.final):
        raise RuntimeError(f"no trial reported {metric}: see the trials' errors above")
    write_trials_csv(out_dir / TRIALS_CSV, ranked, metric, mode)
    write_curves(out_dir / CURVES_PNG, ranked, metric, winner)
    command = write_best(out_dir, winner, budget, metric, mode, len(ranked))
    return winner, command
