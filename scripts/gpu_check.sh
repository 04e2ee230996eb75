#!/usr/bin/env bash
# GPU check: every task x head trained for a few steps with DDP on all GPUs at bf16-mixed, evaluated,
# then `hrnet bench --device cuda`; prints one table and writes benchmarks/results/gpu_check.json.
# Run on a CUDA machine after `bash scripts/install.sh`:  bash scripts/gpu_check.sh
# (`bash scripts/gpu_check.sh --accelerator cpu --devices 2 --precision 32-true` runs the same on CPU.)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=python3
[ -x .venv/bin/python ] && PY=.venv/bin/python
exec "$PY" scripts/gpu_check.py "$@"
