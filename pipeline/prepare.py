"""prepare stage: locates and checks the task's data at ``data.root``; writes its index.

``data.root`` is a DVC dependency of this stage (``${data.root}`` in dvc.yaml): the embedded
synthetic data that the synthesize stage writes, or a real COCO / Cityscapes folder.

Everything lands in ``data/prepared/`` at once, through a temporary folder renamed into place,
so a failed or killed run leaves the previous prepared data untouched.

Input data is checked on the way (``hrnet.data.validation``), every task's alike, into one
:class:`~hrnet.data.issues.IssueLog`. Under ``data.on_bad_sample: fail`` the first bad record ends
the stage with one line ``error: <file>: <record>: <what> (expected ...)`` and nothing is written;
under ``skip`` bad records (images, labels, annotations) are left out. Either way a successful run
writes ``reports/data_issues.json``: how many records were skipped and the first offenders.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from pathlib import Path

from hrnet.data.issues import IssueLog
from hrnet.errors import MissingFileError
from hrnet.io import atomic_directory
from hrnet.process import run_program
from hrnet.tasks import TASKS
from pipeline.common import PREPARED_DIR, REPORTS_DIR, run_stage
from pipeline.params import Params

ISSUES_FILE = REPORTS_DIR / "data_issues.json"

log = logging.getLogger("pipeline.prepare")


def _shown_as(tmp: Path, final: Path) -> Callable[[Path], str]:
    """Names files inside the temporary output folder by where they will live."""

    def display(path: Path) -> str:
        return str(final / path.relative_to(tmp)) if path.is_relative_to(tmp) else str(path)

    return display


def prepare(params: Params) -> None:
    root = Path(params.data.root)
    if params.data.source == "synthetic" and not root.is_dir():
        raise MissingFileError(
            f"{root}: data.root: the synthetic dataset is not there; run the synthesize stage first "
            "(dvc repro synthesize)"
        )
    parent = PREPARED_DIR.parent
    parent_existed = parent.exists()
    issues = IssueLog(params.data.on_bad_sample)
    try:
        with atomic_directory(PREPARED_DIR) as tmp:
            issues.display = _shown_as(tmp, PREPARED_DIR)
            TASKS[params.task].prepare(params, tmp, issues)
    except BaseException:
        if not parent_existed:  # leave no trace of a failed first run either
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise
    issues.write(ISSUES_FILE)
    if issues.count:
        log.warning(
            "skipped %d bad record(s) (data.on_bad_sample: skip); first ones listed in %s",
            issues.count,
            ISSUES_FILE,
        )


def main() -> None:
    run_stage(prepare)


if __name__ == "__main__":
    run_program(main)
