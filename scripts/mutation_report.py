"""Summarise the last mutmut run (``scripts/mutation.sh``): counts per status and one line per mutant
that was not killed, with its file, line, change and why it may live, written to ``reports/mutation/``.

Why a mutant may live comes from ``reports/mutation/explained.tsv`` (mutant name, tab, reason), written
by hand after reading the mutant; a survivor without a line there is reported as UNEXPLAINED and makes
the script exit 1. Reads the ``mutants/`` folder mutmut leaves behind (mutmut 3.x); run it from the
repository root.
"""

from __future__ import annotations

import ast
import json
import sys
from collections import Counter
from pathlib import Path

from mutmut.configuration import config
from mutmut.mutation.data import SourceFileMutationData
from mutmut.mutation.diff_apply import get_diff_for_mutant
from mutmut.stats import status_by_exit_code
from mutmut.utils.file_utils import walk_mutatable_files

OUT = Path("reports/mutation")


def function_lines(path: Path) -> dict[str, int]:
    """First line of every function and method of ``path``, keyed as mutmut mangles them
    (``name`` or ``xǁClassǁname``)."""
    tree = ast.parse(path.read_text())
    lines: dict[str, int] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            lines[node.name] = node.lineno
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    lines[f"xǁ{node.name}ǁ{item.name}"] = item.lineno
    return lines


def locate(path: Path, mutant: str, removed: str) -> int | None:
    """The source line of ``removed`` (the diff's first ``-`` line) inside the mutant's function."""
    function = mutant.rpartition(".")[2].rpartition("__mutmut_")[0]
    function = function[2:] if function.startswith("x_") else function
    start = function_lines(path).get(function)
    if start is None or not removed:
        return start
    source = path.read_text().splitlines()
    for number in range(start, len(source) + 1):
        if source[number - 1].strip() == removed:
            return number
    return start


def change(diff: str) -> tuple[str, str]:
    """The first removed and the first added line of a mutant's diff, stripped."""
    body = diff.splitlines()[2:]
    removed = next((line[1:].strip() for line in body if line.startswith("-")), "")
    added = next((line[1:].strip() for line in body if line.startswith("+")), "")
    return removed, added


def explanations() -> dict[str, str]:
    """``reports/mutation/explained.tsv``: mutant name -> why it is equivalent or left alive."""
    path = OUT / "explained.tsv"
    if not path.exists():
        return {}
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    rows = (line.split("\t", 1) for line in lines)
    return {name.strip(): reason.strip() for name, reason in rows}


def main() -> int:
    config()  # reads [tool.mutmut] of pyproject.toml
    explained = explanations()
    counts: Counter[str] = Counter()
    rows = []
    for path in walk_mutatable_files():
        data = SourceFileMutationData(path=path)
        data.load()
        for name, exit_code in sorted(data.exit_code_by_key.items()):
            status = status_by_exit_code[exit_code]
            counts[status] += 1
            if status == "killed":
                continue
            removed, added = change(get_diff_for_mutant(name, path=path))
            where = f"{path}:{locate(Path(path), name, removed)}"
            rows.append((name, status, where, removed, added, explained.get(name, "UNEXPLAINED")))
    OUT.mkdir(parents=True, exist_ok=True)
    with open(OUT / "survivors.tsv", "w") as out:
        out.write("mutant\tstatus\twhere\toriginal\tmutant\twhy it lives\n")
        for row in rows:
            out.write("\t".join(row) + "\n")
    summary = {"total": sum(counts.values()), **dict(sorted(counts.items()))}
    unexplained = sum(row[-1] == "UNEXPLAINED" for row in rows)
    summary["unexplained"] = unexplained
    (OUT / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))
    print(f"{len(rows)} mutants not killed, {unexplained} of them unexplained: {OUT / 'survivors.tsv'}")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
