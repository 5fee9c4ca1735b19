# Path helpers and config lookups shared by the rule files; no algorithm lives here.
import shlex

from uniembed.config import compose_config, experiment_overrides

CONFIG_DIR = str(Path(workflow.basedir) / "config")
# Stage modules run as `python -m uniembed.stages.<stage>` in whatever env a rule uses
# (the project venv, or a conda env from envs/ under --sdm conda): put the library on its path.
_SRC = shlex.quote(str(Path(workflow.basedir) / "src"))
shell.prefix(f"set -euo pipefail; export PYTHONPATH={_SRC}${{{{PYTHONPATH:+:$PYTHONPATH}}}}; ")
RESOURCES = config["resources"]
RUN_DIR = f"{config['results']}/{config['run_name']}"
LOGS = f"{RUN_DIR}/logs"
BENCHMARKS = f"{RUN_DIR}/benchmarks"
OVERRIDES = experiment_overrides(config["experiment"], RESOURCES, config.get("hydra_overrides", []))
# The composed stage config, read here only to lay out the DAG (sources, what must be built).
STAGE_CONFIG = compose_config(OVERRIDES, CONFIG_DIR)
STAGE_ARGS = " ".join(["--config-dir", shlex.quote(CONFIG_DIR), *map(shlex.quote, OVERRIDES)])
SOURCES = list(STAGE_CONFIG.data.sources)
MODEL_DIR = STAGE_CONFIG.model.path
DATA_ROOT = STAGE_CONFIG.data.root
CURATED_TABLES = ["queries", "candidates", "pools", "datasets", "quarantine"]
EVAL_SOURCES = [s for s, spec in STAGE_CONFIG.data.sources.items() if spec.format in ("mbeir", "mmeb")]
# Models the evaluate rule knows, by tag; training stages register their adapters here.
EVAL_MODELS = {"zero_shot": {"model_dir": MODEL_DIR, "adapter_dir": None}}


def curated(source, table):
    return f"{RUN_DIR}/curated/{source}/{table}.parquet"


def generated_data():
    """The generated dataset directory when the data config has a generator, else nothing."""
    return [DATA_ROOT] if STAGE_CONFIG.data.generator is not None else []


def built_model():
    return [MODEL_DIR] if STAGE_CONFIG.model.build is not None else []


def all_targets():
    summaries = [f"{RUN_DIR}/curated/{s}/summary.json" for s in SOURCES]
    evaluations = [f"{RUN_DIR}/eval/{tag}/tables.md" for tag in EVAL_MODELS] if EVAL_SOURCES else []
    return built_model() + summaries + evaluations
