"""Parsing the workflow loads no model library: the config's validation, the families' registry and the rules' code
versions read settings and source files only, so every `snakemake` call (a dry run, each SLURM job's jobstep)
parses without importing torch, transformers or peft (~6 s of CPU each on 2 cores)."""
import subprocess
import sys

from tests.workflow.dag import scratch_project

PARSE = """
import runpy, sys
sys.argv = ["snakemake", "--dry-run", "--cores", "1", "--quiet"]
try:
    runpy.run_module("snakemake", run_name="__main__")
except SystemExit as end:
    assert not end.code, f"snakemake exited with {end.code}"
print("LOADED", sorted(name for name in ("torch", "transformers", "peft") if name in sys.modules))
"""


def test_a_dry_run_of_the_default_imports_no_model_library(tmp_path):
    project = scratch_project(tmp_path)
    result = subprocess.run([sys.executable, "-c", PARSE], cwd=project, capture_output=True, text=True, timeout=600,
                            env={"PYTHONPATH": str(project / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "LOADED []" in result.stdout, result.stdout[-2000:]
