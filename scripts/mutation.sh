#!/usr/bin/env bash
# Mutation run (issue 25, point 3; README "Tests", "Mutation run"): mutmut 3 mutates
# hrnet/evaluation, hrnet/codecs and hrnet/data/transforms.py (pyproject.toml, [tool.mutmut]) and runs,
# for each mutant, those fast unit tests of the list there that reach the mutated function, with
# one worker and pytest in one process (-n 0). Then reports/mutation/summary.json (counts) and
# reports/mutation/survivors.tsv (every mutant not killed: where, what it changes).
#
#   bash scripts/mutation.sh                    # all three targets, from scratch (about 15 min)
#   bash scripts/mutation.sh "hrnet.codecs*"    # one target (mutant-name globs, as mutmut takes them)
#   MUTATION_KEEP=1 bash scripts/mutation.sh    # reuse mutants/ and the results already there
#
# The mutated copy lives in mutants/ (git-ignored; pytest's testpaths never reach it). The run's
# progress goes to mutants/run.log; the report covers every mutant whose result mutants/ holds.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
# two cores shared: one worker, and no thread pool per test process
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
if [ "${MUTATION_KEEP:-0}" != 1 ]; then
  rm -rf mutants
fi
mkdir -p mutants
start=$(date +%s)
status=0
.venv/bin/mutmut run --max-children 1 "$@" > mutants/run.log 2>&1 || status=$?
if [ "$status" != 0 ]; then
  tail -n 40 mutants/run.log
  echo "mutmut run failed (exit $status); its log: mutants/run.log" >&2
  exit "$status"
fi
echo "mutmut run: $(( $(date +%s) - start )) s"
"$PY" scripts/mutation_report.py
