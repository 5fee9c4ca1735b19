"""The shared DAG run of the integration tests: the embedded default, run by Snakemake in a
scratch copy of the project once per test session."""
import pytest

from tests.workflow.dag import scratch_project, snakemake


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The project directory after the embedded default ran exactly as the README runs it on a fresh clone: default
    sizes, the world and every model built first (the towers' vision pretraining and the judge's instruct training
    overlap the embedder's stages: ~20 minutes on 2 cores)."""
    project = scratch_project(tmp_path_factory.mktemp("project"))
    result = snakemake(project, timeout=2400)
    assert result.returncode == 0, result.output[-3000:]
    return project
