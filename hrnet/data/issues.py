"""The issue log: where checks put bad records, and what ``data.on_bad_sample`` does with them.

Every check that finds a bad record calls :meth:`IssueLog.add` on the log it was given. Under
``on_bad_sample="fail"`` (the default) that raises :class:`~hrnet.errors.DataError` with the one
line ``<file>: <record>: <what is wrong> (expected ...)``; under ``"skip"`` the record is listed
and the caller leaves it out. :meth:`IssueLog.write` writes the report (``reports/data_issues.json``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from hrnet.errors import DataError, UserError
from hrnet.io import atomic_write_json

OnBadSample = Literal["fail", "skip"]

MAX_EXAMPLES = 20  # offenders listed in the report; the count covers all of them
REPORT_FORMAT = "hrnet-data-issues"


@dataclass(frozen=True)
class Issue:
    """One bad record: an annotation, an image entry, an image or a label file."""

    split: str
    file: str
    record: str  # "annotation 1203", "image 17", "annotations[4]" (when the id itself is bad)
    record_id: int | None
    reason: str

    def message(self) -> str:
        return f"{self.file}: {self.record}: {self.reason}"

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "file": self.file,
            "record": self.record,
            "id": self.record_id,
            "reason": self.reason,
        }


@dataclass
class IssueLog:
    """Collects bad records; raises on the first one under ``on_bad_sample="fail"``.

    ``display`` turns a path into the text shown in messages and the report (the prepare stage
    maps its temporary output folder to the final one).
    """

    on_bad_sample: OnBadSample = "fail"
    display: Callable[[Path], str] = str
    max_examples: int = MAX_EXAMPLES
    issues: list[Issue] = field(default_factory=list)
    splits: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.on_bad_sample not in ("fail", "skip"):
            raise ValueError(f"on_bad_sample: expected 'fail' or 'skip', got {self.on_bad_sample!r}")

    def start(self, split: str) -> None:
        """Makes ``split`` appear in the report even when none of its records is bad."""
        self.splits.setdefault(split, 0)

    def add(
        self,
        split: str,
        file: Path,
        record: str,
        reason: str,
        record_id: int | None = None,
        *,
        error: type[UserError] = DataError,
    ) -> None:
        """Records one bad record; under ``fail`` raises ``error`` (a missing file: ``MissingFileError``)."""
        issue = Issue(split, self.display(Path(file)), record, record_id, reason)
        if self.on_bad_sample == "fail":
            raise error(issue.message())
        self.issues.append(issue)
        self.splits[split] = self.splits.get(split, 0) + 1

    @property
    def count(self) -> int:
        return len(self.issues)

    def count_for(self, split: str) -> int:
        return self.splits.get(split, 0)

    def summary(self) -> dict[str, Any]:
        return {
            "format": REPORT_FORMAT,
            "on_bad_sample": self.on_bad_sample,
            "count": self.count,
            "by_split": dict(self.splits),
            "examples": [issue.to_json() for issue in self.issues[: self.max_examples]],
        }

    def write(self, path: str | Path) -> None:
        """Writes :meth:`summary` to ``path`` atomically."""
        atomic_write_json(path, self.summary())
