#!/usr/bin/env bash
# Creates .venv (if missing) and installs the library with its pipeline (DVC, DVCLive, Ray Tune),
# dev (tests, ruff, timm), fast (pyspng)
# and onnx (ONNX export and onnxruntime) extras.
# torch/torchvision resolve to the local wheels pinned in pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[pipeline,dev,fast,onnx]"
