"""A study's results beside the paper's: ``reports/studies/<name>.md``, ``.png`` (bar chart) and ``.json``.

Plain data in, files out (each written atomically). Scores are shown x100, the scale of the paper's
tables; mean and sample standard deviation over the study's seeds.
"""

from __future__ import annotations

import itertools
import logging
import statistics
import subprocess
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hrnet.errors import UserError
from hrnet.io import atomic_path, atomic_write_json, atomic_write_text
from pipeline.study_spec import Run, Study, apply_overrides, runs

log = logging.getLogger("pipeline.study")
SCALE = 100.0
DONE, QUEUED, RUNNING, FAILED, MISSING = "done", "queued", "running", "failed", "not run"


@dataclass
class Experiment:
    """What `dvc exp show --json` holds of one experiment."""

    state: str
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    baseline_params: dict[str, Any] | None = None  # params.yaml of the commit it ran on


def find_experiment(run: Run, found: dict[str, Experiment]) -> Experiment | None:
    """The experiment named for ``run``, else one trained with exactly its params (finished ones first).

    An experiment's params are compared with ``run``'s overrides applied to params.yaml *of the commit
    it ran on*, so keys added to params.yaml since (new options at their defaults) do not hide it."""
    if run.name in found:
        return found[run.name]
    same = sorted((e for e in found.values() if _runs_as(e, run)), key=lambda e: e.state != DONE)
    return same[0] if same else None


def _runs_as(exp: Experiment, run: Run) -> bool:
    if exp.baseline_params is None:
        return exp.params == run.params
    try:
        return exp.params == apply_overrides(exp.baseline_params, run.overrides)
    except UserError:  # an override key that commit's params.yaml did not have
        return False


@dataclass
class Row:
    variant: str
    label: str
    overrides: dict[str, Any]
    metric: str
    values: dict[int, float]  # seed -> score x100
    paper: float | str | None
    task: str = "pose"
    group: str | None = None  # the variant's group: ranked among its own rows only

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values.values()) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values.values()) if len(self.values) > 1 else None


def lookup(metrics: dict[str, Any], dotted: str) -> float | None:
    node: Any = metrics
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return float(node) if isinstance(node, (int, float)) else None


def collect(study: Study, found: dict) -> list[Row]:
    """One row per (variant, metric), holding the score of each seed whose experiment finished."""
    rows = []
    for variant in study.variants:
        variant_runs = [run for run in runs(study) if run.variant.name == variant.name]
        for metric in study.metrics_of(variant):
            values = {}
            for run in variant_runs:
                exp = find_experiment(run, found)
                score = lookup(exp.metrics, metric) if exp is not None and exp.state == DONE else None
                if score is not None:
                    values[run.seed] = score * SCALE
            rows.append(
                Row(
                    variant.name,
                    variant.label or variant.name,
                    variant.set,
                    metric,
                    values,
                    variant.paper.get(metric),
                    variant_runs[0].params.get("task", "pose"),
                    variant.group,
                )
            )
    return rows


def ordering(rows: list[Row], metric: str, task: str | None = None, group: str | None = None) -> str | None:
    """The paper's order of the variants against ours, pair by pair; None without two paper numbers.
    ``group``: the rows of that variant group only (None: the ungrouped rows), e.g. one framework's
    backbones in the detectors study.

    Seeds pair the runs (one seed draws the same synthetic data and initialisation for every variant), so a
    pair counts as in the paper's order on every seed when it holds seed by seed, which the seed-to-seed
    spread of the means would hide."""
    name = _name(metric, task) if group is None else f"{group} {_name(metric, task)}"
    mine = [
        r
        for r in rows
        if r.metric == metric and task in (None, r.task) and r.group == group and r.mean is not None
    ]
    rated = [r for r in mine if isinstance(r.paper, (int, float))]
    if len(rated) < 2:
        if len(mine) < 2:
            return None
        ours = " > ".join(f"{r.label} ({r.mean:.1f})" for r in sorted(mine, key=lambda r: -r.mean))
        every_seed = _every_seed(sorted(mine, key=lambda r: -r.mean))
        return f"{name}: here {ours}; {every_seed}."
    paper = " > ".join(r.label for r in sorted(rated, key=lambda r: -r.paper))
    ours = " > ".join(r.label for r in sorted(rated, key=lambda r: -r.mean))
    pairs = [
        (a, b) if a.paper > b.paper else (b, a)
        for a, b in itertools.combinations(rated, 2)
        if a.paper != b.paper
    ]
    agree = [(a, b) for a, b in pairs if a.mean > b.mean]
    every_seed = [
        (a, b)
        for a, b in pairs
        if (seeds := a.values.keys() & b.values.keys()) and all(a.values[s] > b.values[s] for s in seeds)
    ]
    return (
        f"{name}: paper {paper}; here {ours}. {len(agree)} of {len(pairs)} pairs in the "
        f"paper's order by the mean, {len(every_seed)} on every seed."
    )


def _name(metric: str, task: str | None) -> str:
    return metric if task is None else f"{task} {metric}"


def _every_seed(ranked: list[Row]) -> str:
    """Which neighbours in the ranking keep their order on every seed."""
    held = [
        f"{a.label} > {b.label}"
        for a, b in itertools.pairwise(ranked)
        if (seeds := a.values.keys() & b.values.keys()) and all(a.values[s] > b.values[s] for s in seeds)
    ]
    return "on every seed: " + (", ".join(held) if held else "none of the neighbours' orders")


def _fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _overrides(overrides: dict[str, Any]) -> str:
    return ", ".join(f"`{k}={v}`" for k, v in overrides.items()) or "(defaults)"


def markdown(study: Study, rows: list[Row], commit: str, png_name: str) -> str:
    seeds = ", ".join(map(str, study.seeds))
    lines = [
        f"# {study.title}",
        "",
        *([study.description.strip(), ""] if study.description.strip() else []),
        f"Paper: {study.paper_source}",
        "",
        f"Run on the embedded synthetic data with `python -m pipeline.study run studies/{study.name}.yaml`: "
        f"each variant at seeds {seeds}, shared overrides {_overrides(study.set)}, stages "
        f"`{' '.join(study.targets)}`, commit(s) `{commit}`. Scores x100 (the paper's scale): mean ± sample "
        "standard deviation over the seeds, and each seed's score.",
        "",
        "| variant | overrides | metric | here: mean ± std | per seed | paper |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        spread = "" if row.std is None else f" ± {row.std:.1f}"
        per_seed = ", ".join(f"{row.values[s]:.1f}" if s in row.values else "–" for s in study.seeds)
        paper = (
            "–" if row.paper is None else (f"{row.paper:.1f}" if isinstance(row.paper, float) else row.paper)
        )
        mean = (
            _fmt(row.mean)
            + spread
            + ("" if len(row.values) == len(study.seeds) else f" (n={len(row.values)})")
        )
        lines.append(
            f"| {row.label} | {_overrides(row.overrides)} | {row.metric} | {mean} | {per_seed} | {paper} |"
        )
    groups = dict.fromkeys((r.task, r.group, r.metric) for r in rows)
    multi_task = len({task for task, _, _ in groups}) > 1
    orders = [o for o in (ordering(rows, m, t if multi_task else None, g) for t, g, m in groups) if o]
    if orders:
        lines += ["", "Order of the variants:", "", *[f"- {o}" for o in orders]]
    missing = [r for r in rows if len(r.values) < len(study.seeds)]
    if missing:
        lines += ["", f"Incomplete: {len(missing)} row(s) lack a seed's result (not run or failed)."]
    lines += ["", f"![{study.title}]({png_name})", ""]
    return "\n".join(lines)


def chart(study: Study, rows: list[Row], path: Path) -> bool:
    """Bars of mean ± std per variant, a panel per metric, a dot per seed, the paper's figure in the label."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(dict.fromkeys(r.metric for r in rows))
    figure, axes = plt.subplots(1, len(metrics), figsize=(1.6 + 1.4 * len(rows), 4.2))
    axes = [axes] if len(metrics) == 1 else list(axes)
    for ax, metric in zip(axes, metrics, strict=True):
        mine = [r for r in rows if r.metric == metric]
        xs = range(len(mine))
        ax.bar(
            xs, [r.mean or 0.0 for r in mine], yerr=[r.std or 0.0 for r in mine], capsize=4, color="#4c72b0"
        )
        for x, row in zip(xs, mine, strict=True):
            ax.scatter([x] * len(row.values), list(row.values.values()), color="black", s=12, zorder=3)
        labels = [r.label + ("" if r.paper is None else f"\npaper {_paper_short(r.paper)}") for r in mine]
        ax.set_xticks(list(xs), labels, fontsize=8)
        ax.set_ylabel(f"{metric} x100 (synthetic val)")
        ax.set_title(metric, fontsize=10)
    figure.suptitle(study.title, fontsize=11)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return True


def _paper_short(value: float | str) -> str:
    return f"{value:.1f}" if isinstance(value, float) else value[:18]


def _commits(revs: Sequence[str]) -> str:
    result = subprocess.run(["git", "rev-parse", "--short", *revs], capture_output=True, text=True)
    return ", ".join(result.stdout.split()) or ", ".join(revs)


def write_report(study: Study, found: dict, out: Path, revs: Sequence[str] = ("HEAD",)) -> list[Path]:
    rows = collect(study, found)
    if not any(r.values for r in rows):
        log.warning("%s: no finished experiment yet; writing an empty report", study.name)
    md, png, js = (out / f"{study.name}{ext}" for ext in (".md", ".png", ".json"))
    commit = _commits(revs)
    chart(study, rows, png)
    atomic_write_text(md, markdown(study, rows, commit, png.name))
    runs_by_name = {run.name: {"variant": run.variant.name, "seed": run.seed} for run in runs(study)}
    atomic_write_json(
        js,
        {
            "study": study.name,
            "commit": commit,
            "rows": [asdict(r) | {"mean": r.mean, "std": r.std} for r in rows],
            "experiments": runs_by_name,
        },
    )
    return [md, png, js]
