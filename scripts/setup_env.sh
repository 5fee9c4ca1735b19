#!/usr/bin/env bash
# Create (or update) the project's virtual environment for the CPU path.
# torch is pinned first so that no dependency pulls a CUDA build; GPU-only packages
# (vLLM, faiss-gpu, DeepSpeed) live in optional extras and envs/*.yaml, not here.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${UNIEMBED_VENV:-.venv}"
PY="${PYTHON:-python3}"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null
"$VENV/bin/python" -c 'import torch, sys; sys.exit(torch.__version__.split("+")[0] != "2.13.0")' 2>/dev/null \
  || "$VENV/bin/python" -m pip install -q "torch==2.13.0"
"$VENV/bin/python" -m pip install -q -e ".[cpu,dev,slurm,docs,mieb]"
echo "environment ready: $VENV in ${SECONDS} s (activate with: . $VENV/bin/activate)"
