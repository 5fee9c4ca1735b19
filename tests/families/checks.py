"""What a whole DAG run with one family as every model must hold (tests/families/test_dag.py runs LLaVA-OneVision and
Qwen2.5-VL locally, tests/slurm/test_slurm_profile.py Qwen3-VL through SLURM): every trained model is saved as its
family, with LoRA on decoder modules only and the vision tower (and projector) bit-identical to the base model's; every
evaluation is a finite score; every judge score a probability."""
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

from uniembed.artifacts import read_parquet
from uniembed.evaluate.results import SCORES
from uniembed.mine.schemas import JUDGE_SCORES
from uniembed.model.families import family

#: Every rule of the embedded default's DAG (the tiny recipe), which each family runs.
DEFAULT_RULES = {"generate_data", "build_model", "build_judge_model", "instruct_judge_model", "curate", "pretrain",
                 "evaluate", "evaluate_mieb", "mine", "judge", "filter", "judge_quality", "train_hn", "train_reranker", "rerank",
                 "distill_data", "distill", "tables", "run_manifest", "all"}


def check_trained_models(project: Path, name: str) -> None:
    """Every trained model of the run is a ``name`` model with LoRA on the decoder and the base model's tower."""
    run, fam = project / "results" / "default", family(name)
    bases = {"embedder": project / "resources" / "models" / "tiny-qwen2vl",
             "judge": project / "resources" / "models" / "tiny-judge-instruct" / "model"}
    frozen = {role: _vision_weights(path, fam) for role, path in bases.items()}
    assert all(frozen.values()), "the base models hold no vision weights under the family's module names"
    models = sorted(p for p in (run / "models").iterdir() if (p / "model" / "config.json").is_file())
    assert len(models) >= 2
    for model in models:
        assert json.loads((model / "model" / "config.json").read_text())["model_type"] == name, model
        adapter = load_file(model / "adapter" / "adapter_model.safetensors")
        assert adapter and not [k for k in adapter if any(f".{m}." in k for m in fam.vision_modules)], model
        base = frozen["judge" if model.name.startswith("reranker_") else "embedder"]
        trained = _vision_weights(model / "model", fam)
        assert trained.keys() == base.keys(), model
        for key, value in base.items():
            np.testing.assert_array_equal(trained[key], value, err_msg=f"{model.name}: {key}")


def check_scores(project: Path) -> None:
    """Every evaluation of the run is a finite score in [0, 100], every judge score a probability."""
    run = project / "results" / "default"
    evaluations = sorted((run / "eval").glob("*/scores.parquet"))
    assert len(evaluations) >= 3
    for path in evaluations:
        values = read_parquet(path, SCORES).column("value").to_numpy()
        assert values.size and np.isfinite(values).all() and ((values >= 0) & (values <= 100)).all(), path
    judged = read_parquet(run / "mining" / "judge_scores.parquet", JUDGE_SCORES)
    scores = np.asarray(judged.column("score").to_pylist(), dtype=float)
    assert scores.size and ((scores >= 0) & (scores <= 1)).all()


def _vision_weights(model_dir, fam) -> dict:
    """The vision tower's (and projector's) weights of a saved model, by name under the backbone (an embedder is
    saved as the backbone, ``visual.*``; a generative model with its head, ``model.visual.*``)."""
    weights = {}
    for shard in sorted(model_dir.glob("*.safetensors")):
        for key, value in load_file(shard).items():
            key = key.removeprefix("model.")
            if key.split(".")[0] in fam.vision_modules:
                weights[key] = value
    return weights
