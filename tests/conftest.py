import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402

TESTS = Path(__file__).resolve().parent
#: Directories whose tests share session-wide state (one DAG run, the SLURM cluster, snakemake runs on
#: copies of the workflow, the vLLM env): each runs on one xdist worker; other tests go file by file.
SHARED_STATE = {"integration", "slurm", "workflow", "vllm"}
SLOW_SECONDS = 60
_STARTED = time.monotonic()
_reporter = None


#: Directories whose every test starts Snakemake on a copy of the project (a dry run or a run): marked ``dag``.
DAG_DIRECTORIES = {"integration", "slurm", "workflow"}


def pytest_itemcollected(item):
    """One xdist group per directory of SHARED_STATE, else per file (``--dist loadgroup``); marked as each
    test is collected, before xdist's worker reads the marks in ``pytest_collection_modifyitems``. Tests of
    DAG_DIRECTORIES get the ``dag`` mark (the contributor's fast loop leaves them out; CI runs them)."""
    parts = Path(str(item.fspath)).resolve().relative_to(TESTS).parts
    item.add_marker(pytest.mark.xdist_group(parts[0] if parts[0] in SHARED_STATE else "/".join(parts)))
    if parts[0] in DAG_DIRECTORIES:
        item.add_marker(pytest.mark.dag)


#: Groups handed out first, longest first (``--no-loadscope-reorder``: xdist deals groups in collection order, a worker
#: takes the next one when it has at most two tests left): the integration run (the whole embedded default from a fresh
#: clone, ~20 min, then its tests), the SLURM cluster's runs, the vLLM tier, the family DAGs, the workflow's runs; the
#: short groups fill the end.
FIRST_GROUPS = ("integration", "slurm", "vllm", "families/test_dag.py", "workflow", "families/test_real_size.py",
                "vision/test_vision_pretrain.py", "train/test_trainer.py", "train/test_rerank_training.py",
                "stages/test_stages.py")


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Collection order = the order xdist hands groups out (FIRST_GROUPS first, the rest as collected)."""
    def rank(item):
        parts = Path(str(item.fspath)).resolve().relative_to(TESTS).parts
        group = parts[0] if parts[0] in SHARED_STATE else "/".join(parts)
        return FIRST_GROUPS.index(group) if group in FIRST_GROUPS else len(FIRST_GROUPS)
    items.sort(key=rank)


@pytest.hookimpl(trylast=True)  # after the terminal reporter is registered
def pytest_configure(config):
    global _reporter
    if not hasattr(config, "workerinput"):
        _reporter = config.pluginmanager.get_plugin("terminalreporter")
    elif os.environ.get("UNIEMBED_TEST_THREADS", "1") != "0":
        # an xdist worker computes on UNIEMBED_TEST_THREADS torch threads (1): the workers share the machine's cores
        # with each other and with the DAG runs' jobs, and small matrices on oversubscribed threads run several times
        # slower (0: torch's default)
        import torch
        torch.set_num_threads(int(os.environ.get("UNIEMBED_TEST_THREADS", "1")))


def pytest_runtest_logreport(report):
    """Name every phase slower than SLOW_SECONDS as it ends, with the run's elapsed time (a CI log that
    is cut off still says where the time went)."""
    if _reporter is not None and report.duration >= SLOW_SECONDS:
        elapsed = time.monotonic() - _STARTED
        _reporter.ensure_newline()
        _reporter.write_line(f"[{elapsed / 60:5.1f} min] {report.duration:6.0f} s {report.when:8s} {report.nodeid}")

#: Small sizes of the synthetic world for tests (the default config is larger).
SMALL_WORLD = {"mbeir_train_queries": 24, "mbeir_test_queries": 12, "mbeir_pool": 60, "mmeb_train_rows": 12,
               "mmeb_eval_rows": 8, "mmeb_candidates": 8, "mmeb_gallery": 24, "nli_triplets": 20, "caption_pairs": 12,
               "zeroshot_images": 12}


@pytest.fixture(scope="session")
def tiny_qwen2vl(tmp_path_factory):
    """The embedded default's tiny Qwen2-VL, built once per session from the synthetic corpus."""
    from uniembed.data.synthetic.world import corpus
    from uniembed.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-qwen2vl", corpus(0), family_name="qwen2_vl")


def _family_names() -> list[str]:
    from uniembed.model.families import families

    return sorted(families())


@pytest.fixture(scope="session", params=_family_names())
def tiny_family_model(request, tmp_path_factory):
    """The family matrix: each registered family's tiny model, built like :func:`tiny_qwen2vl` (Qwen2-VL is
    that one). A test taking it runs once per family."""
    if request.param == "qwen2_vl":
        return request.getfixturevalue("tiny_qwen2vl")
    from uniembed.data.synthetic.world import corpus
    from uniembed.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / f"tiny-{request.param}", corpus(0),
                            family_name=request.param)


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """A small synthetic world, curated: ``{"root": Path, "curated": {source: Path}}``."""
    from uniembed.data.curate import finalize
    from uniembed.data.readers import read_karpathy, read_mbeir, read_mmeb, read_sugarcrepe
    from uniembed.data.synthetic import generate_synthetic

    base = tmp_path_factory.mktemp("world")
    generate_synthetic(base / "synthetic", seed=0, sizes=SMALL_WORLD)
    curated = {}
    zeroshot = base / "synthetic" / "zeroshot"
    for name, records in {"mbeir": read_mbeir("mbeir", base / "synthetic" / "mbeir"),
                          "mmeb": read_mmeb("mmeb", base / "synthetic" / "mmeb"),
                          "shapes2": read_karpathy("shapes2", zeroshot / "dataset_shapes2.json", zeroshot),
                          "shapes2_crepe": read_sugarcrepe("shapes2_crepe", zeroshot / "sugarcrepe",
                                                           zeroshot / "images")}.items():
        finalize(records, progress=False).write(base / "curated" / name)
        curated[name] = base / "curated" / name
    return {"root": base / "synthetic", "curated": curated}
