"""Runs a study as DVC experiments and reports it: ``python -m pipeline.study run|status|report``.

    python -m pipeline.study run studies/fusion_units.yaml -j 1   # queue what has not run, start, wait
    python -m pipeline.study run studies/*.yaml                   # every study, one queue
    python -m pipeline.study status studies/fusion_units.yaml     # done / queued / running / failed
    python -m pipeline.study report studies/*.yaml                # reports/studies/<name>.{md,png,json}

Each (variant, seed) is one `dvc exp run --queue --name <study>-<variant>-s<seed>-<hash>` whose name
hashes its overrides, so a run that has finished (or is queued or running) on the current commit is
skipped, and editing a variant's values queues fresh experiments instead of reusing stale ones. The
results are read back from `dvc exp show --json`, the experiments' own record of params and metrics.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from hrnet.errors import UserError
from hrnet.process import run_program
from pipeline.study_report import DONE, FAILED, MISSING, QUEUED, RUNNING, Experiment, find_experiment
from pipeline.study_spec import Run, Study, load_study, runs

log = logging.getLogger("pipeline.study")

METRICS_FILE = "reports/metrics.json"


class DvcError(UserError):
    """A dvc command failed; the message is its last line of output."""


def dvc_command() -> str:
    """The dvc of this interpreter's environment (works without an activated venv), else dvc on PATH."""
    beside = Path(sys.executable).with_name("dvc")
    found = str(beside) if beside.is_file() else shutil.which("dvc")
    if found is None:
        raise DvcError("dvc not found: install the pipeline (pip install '.[pipeline]', scripts/install.sh)")
    return found


def start_queue(jobs: int) -> None:
    """`dvc queue start -j jobs`. Its workers inherit the command's stdout and stderr and outlive it, so
    these go to a file, not a pipe: reading a pipe to its end would wait for the whole queue."""
    with tempfile.TemporaryFile(mode="w+") as log_file:
        result = subprocess.run(
            [dvc_command(), "queue", "start", "-j", str(jobs)], stdout=log_file, stderr=log_file
        )
        if result.returncode != 0:
            log_file.seek(0)
            last = (log_file.read().strip() or "no output").splitlines()[-1]
            raise DvcError(f"dvc queue start -j {jobs}: {last}")


def dvc(*args: str, timeout: float | None = None) -> str:
    """Runs ``dvc args``; its output, or a :class:`DvcError` (also when it runs past ``timeout`` s)."""
    try:
        result = subprocess.run([dvc_command(), *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DvcError(f"dvc {' '.join(args[:3])} ...: no answer after {timeout:.0f} s, stopped") from None
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]
        raise DvcError(f"dvc {' '.join(args[:3])} ...: {last}")
    return result.stdout


SHOW_TIMEOUT_FLOOR_S = 60.0
_last_show_s = 0.0  # how long the last `dvc exp show` of this process took


def experiments(revs: Sequence[str] = ("HEAD",)) -> dict[str, Experiment]:
    """The experiments whose baseline is one of the commits ``revs``, with state, metrics and params."""
    global _last_show_s
    found: dict[str, Experiment] = {}
    rev_args = [arg for rev in revs for arg in ("--rev", rev)]
    # `dvc exp show` can race with a queued run removing its temporary workspace: it then fails, or
    # hangs for good (seen: pygit2's blob reader waiting on a reading thread that died with the deleted
    # pack). A listing that takes ten times as long as the last one did, and a minute at least, is such a
    # hang: it is stopped and asked again, as a failed one is.
    for attempt in range(3):
        started = time.monotonic()
        try:
            timeout = max(SHOW_TIMEOUT_FLOOR_S, 10 * _last_show_s)
            shown = json.loads(dvc("exp", "show", "--json", *rev_args, timeout=timeout) or "[]")
            _last_show_s = time.monotonic() - started
            break
        except DvcError:
            if attempt == 2:
                raise
            time.sleep(2)
    order = {sha: i for i, sha in enumerate(_full_shas(revs))}
    # a name run again on a later commit (a variant rerun after a fix) takes the later --rev's result
    for baseline in sorted(shown, key=lambda b: order.get(b.get("rev"), -1)):
        baseline_params = _params_of(baseline.get("data") or {})
        for exp in baseline.get("experiments") or []:
            rev = (exp.get("revs") or [{}])[0]
            name = exp.get("name") or rev.get("name")
            data = rev.get("data") or {}
            state = (exp.get("executor") or {}).get("state") or "success"
            if rev.get("error"):
                state = "failed"
            metrics = ((data.get("metrics") or {}).get(METRICS_FILE) or {}).get("data") or {}
            params = _params_of(data)
            found[name] = Experiment(_state(state, metrics), metrics, params, baseline_params or None)
    return found


def _params_of(data: dict) -> dict:
    return ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}


def _full_shas(revs: Sequence[str]) -> list[str]:
    result = subprocess.run(["git", "rev-parse", *revs], capture_output=True, text=True)
    return result.stdout.split()


def _state(executor_state: str, metrics: dict) -> str:
    if executor_state in ("queued",):
        return QUEUED
    if executor_state in ("running", "run"):
        return RUNNING
    if executor_state in ("failed",):
        return FAILED
    return DONE if metrics else FAILED


def states(study: Study, found: dict[str, Experiment]) -> dict[str, str]:
    """Each run's state: of the experiment of its name, else of one with exactly its params (the same
    variant queued by another study, or by hand), else "not run"."""
    result = {}
    for run in runs(study):
        exp = find_experiment(run, found)
        result[run.name] = exp.state if exp is not None else MISSING
    return result


def progress_line(study: Study, found: dict[str, Experiment]) -> str:
    counts = Counter(states(study, found).values())
    total = sum(counts.values())
    parts = [f"{counts[s]} {s}" for s in (RUNNING, QUEUED, FAILED, MISSING) if counts[s]]
    return f"{study.name}: {counts[DONE]}/{total} done" + (f", {', '.join(parts)}" if parts else "")


def queue(study: Study, found: dict[str, Experiment], queued: list[dict]) -> list[Run]:
    """Queues each run that is neither done, queued nor running (failed ones again), unless a run with
    the same params was queued by this command already (``queued`` holds their params)."""
    todo = []
    for run in runs(study):
        if states(study, found)[run.name] not in (MISSING, FAILED) or run.params in queued:
            continue
        if run.name in found:  # a failed experiment of that name: remove it so the name is free
            dvc("exp", "remove", run.name)
        dvc("exp", "run", "--queue", "--name", run.name, *run.set_args(), *study.targets)
        print(f"queued {run.name}  ({' '.join(run.set_args()[1::2])})")
        queued.append(run.params)
        todo.append(run)
    return todo


def only_variants(study: Study, names: list[str]) -> Study:
    """``study`` restricted to the variants ``names``; a name it does not have is refused."""
    unknown = sorted(set(names) - {v.name for v in study.variants})
    if unknown:
        valid = ", ".join(v.name for v in study.variants)
        raise UserError(f"--variant {unknown[0]}: not a variant of {study.name} (expected one of {valid})")
    return study.model_copy(update={"variants": [v for v in study.variants if v.name in names]})


def run_studies(studies: list[Study], jobs: int, wait: bool, poll_s: float) -> int:
    """Queues what has not run of every study, starts the queue's workers once, then reports progress.

    The experiments are looked up on the commit they were queued on, even if HEAD moves meanwhile."""
    baseline = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    found = experiments([baseline or "HEAD"])
    queued: list[dict] = []
    for study in studies:
        skipped = [name for name, state in states(study, found).items() if state in (DONE, QUEUED, RUNNING)]
        if skipped:
            print(f"{study.name}: skipping {len(skipped)} experiment(s) already done, queued or running")
        queue(study, found, queued)
    if queued or any(s in (QUEUED,) for study in studies for s in states(study, found).values()):
        start_queue(jobs)
    last: dict[str, str] = {}
    while True:
        found = experiments([baseline or "HEAD"])
        for study in studies:
            line = progress_line(study, found)
            if line != last.get(study.name):
                print(f"[{time.strftime('%H:%M:%S')}] {line}")
                last[study.name] = line
        pending = [s for study in studies for s in states(study, found).values() if s in (QUEUED, RUNNING)]
        if not wait or not pending:
            break
        time.sleep(poll_s)
    if not wait:
        return 0
    failed = [name for study in studies for name, state in states(study, found).items() if state != DONE]
    for name in failed:
        print(f"not done: {name} (see `dvc queue logs {name}`)", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.study", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_p = sub.add_parser("run", help="queue the studies' missing experiments, start workers, wait")
    run_p.add_argument("study", type=Path, nargs="+")
    run_p.add_argument("-j", "--jobs", type=int, default=1, help="queue workers (default 1)")
    run_p.add_argument("--no-wait", action="store_true", help="return once queued and started")
    run_p.add_argument("--poll", type=float, default=20.0, help="seconds between progress checks")
    run_p.add_argument(
        "--variant", action="append", help="only this variant (repeatable): to rerun one after a fix"
    )
    status_p = sub.add_parser("status", help="each experiment's state")
    status_p.add_argument("study", type=Path, nargs="+")
    status_p.add_argument(
        "--rev", action="append", help="a commit the experiments ran on (repeatable; default HEAD)"
    )
    report_p = sub.add_parser("report", help="write reports/studies/<name>.md, .png, .json")
    report_p.add_argument("study", type=Path, nargs="+")
    report_p.add_argument("--out", type=Path, default=Path("reports/studies"))
    report_p.add_argument(
        "--rev",
        action="append",
        help="a commit the experiments ran on (repeatable, default HEAD); where one name ran on several, "
        "the later --rev's result counts",
    )
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # progress shows as it happens, also through a pipe
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        studies = [load_study(path) for path in args.study]
        if args.command == "run":
            if args.variant:
                studies = [only_variants(study, args.variant) for study in studies]
            sys.exit(run_studies(studies, args.jobs, not args.no_wait, args.poll))
        revs = args.rev or ["HEAD"]
        found = experiments(revs)
        for study in studies:
            if args.command == "status":
                print(progress_line(study, found))
                for name, state in states(study, found).items():
                    print(f"  {state:8s} {name}")
            else:
                from pipeline.study_report import write_report

                for path in write_report(study, found, args.out, revs):
                    print(f"wrote {path}")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    run_program(main)
