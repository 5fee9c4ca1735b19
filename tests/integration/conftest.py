"""The shared DAG run of the integration tests: the embedded default, run by Snakemake in a
scratch copy of the project once per test session."""
import pytest

from tests.workflow.dag import scratch_project, snakemake


@pytest.fixture(scope="session")
def finished_run(tmp_path_factory):
    """The project directory after the embedded default ran exactly as the README runs it (default sizes), from
    the shared built resources (the models and the world a first run builds; tests.workflow.dag)."""
    project = scratch_project(tmp_path_factory.mktemp("project"), built=True)
    result = snakemake(project)
    assert result.returncode == 0, result.output[-3000:]
    return project
