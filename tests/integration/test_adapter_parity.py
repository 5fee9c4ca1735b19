"""Every adapter the embedded-default DAG saves, on the model it was trained from, gives the
embeddings of the merged model/ saved next to it (a reranker's: its Yes/No logits; max |difference|
<= 1e-5, float32)."""
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from uniembed.config import compose_config, experiment_overrides
from uniembed.embed.embedder import EmbedItem, Embedder, EmbeddingMode
from uniembed.judge.pairs import JudgePair
from uniembed.judge.prompt import build_judge_prompt
from uniembed.judge.transformers_backend import TransformersJudge

MODES = {"mean-bidirectional": EmbeddingMode(), "last-causal": EmbeddingMode(pooling="last", attention="causal")}
TOL = 1e-5


def last_model_step(project: Path, section) -> Path:
    """The directory a model section's last step writes (workflow/rules/common.smk MODEL_STEPS): the instruct
    model's model/, else the vision-pretrained model, else ``path``."""
    if section.get("instruct") is not None:
        return project / f"{section.path}-instruct" / "model"
    return project / (f"{section.path}-vision" if section.get("vision_pretrain") is not None else section.path)


def training_starts(project: Path) -> tuple[Path, dict[str, Path]]:
    """The run directory and ``{stage: the model it was trained from}``, as the workflow chains them:
    the base model for the first stage of ``recipe.pretrain.order``, else the previous model/
    (workflow/rules/pretrain.smk); every hard-negative objective from ``recipe.train_hn.from``'s model/
    (workflow/rules/train_hn.smk); distillation from ``recipe.distill.from``'s model/ and every reranker
    from the model section ``recipe.rerank.base`` names (workflow/rules/rerank.smk)."""
    config = yaml.safe_load((project / "config" / "config.yaml").read_text())
    stage_cfg = compose_config(experiment_overrides(config["experiment"], config["resources"],
                                                    config.get("hydra_overrides", [])), project / "config")
    run_dir = project / config["results"] / config["run_name"]
    order = list(stage_cfg.recipe.pretrain.order)
    starts = {f"pretrain_{stage}": last_model_step(project, stage_cfg.model) if i == 0
              else run_dir / "models" / f"pretrain_{order[i - 1]}" / "model" for i, stage in enumerate(order)}
    train_hn = stage_cfg.recipe.get("train_hn")
    if train_hn:
        starts.update({f"hn_{name}": run_dir / "models" / train_hn["from"] / "model" for name in train_hn.objectives})
    if stage_cfg.recipe.get("distill"):
        starts["distill"] = run_dir / "models" / stage_cfg.recipe.distill["from"] / "model"
    if stage_cfg.recipe.get("rerank"):
        base = last_model_step(project, stage_cfg[stage_cfg.recipe.rerank.get("base", "judge_model")])
        starts.update({f"reranker_{name}": base for name in stage_cfg.recipe.rerank.rerankers})
    return run_dir, starts


def sample_items(run_dir: Path, n: int = 4) -> list[EmbedItem]:
    """Text-only and image queries of the run's curated M-BEIR table, with their instructions."""
    table = pq.read_table(run_dir / "curated" / "mbeir" / "queries.parquet", columns=["text", "image_path", "instruction"])
    with_image = table.filter(pc.is_valid(table["image_path"])).slice(0, n).to_pylist()
    text_only = table.filter(pc.is_null(table["image_path"])).slice(0, n).to_pylist()
    assert len(with_image) == len(text_only) == n
    return [EmbedItem(r["text"], r["image_path"], r["instruction"]) for r in with_image + text_only]


def _rendered(judge, prompts):
    texts, images = [], []
    for prompt in prompts:
        text, prompt_images = judge._render(prompt)
        texts.append(text)
        images += prompt_images
    return texts, images


@pytest.mark.slow
def test_every_saved_adapter_gives_its_merged_models_embeddings(finished_run, monkeypatch):
    monkeypatch.chdir(finished_run)  # recorded paths (adapter base model, images) are relative to the project
    run_dir, starts = training_starts(finished_run)
    adapters = sorted((run_dir / "models").glob("*/adapter"))
    stages = [adapter.parent.name for adapter in adapters]
    unknown = sorted(set(stages) - set(starts))
    assert not unknown, f"adapters of stages {unknown}: this test does not know the models they were trained from"
    assert sorted(stages) == sorted(starts), f"the DAG saved adapters for {stages}, expected {sorted(starts)}"
    items = sample_items(run_dir)
    worst = {}
    for adapter in [a for a in adapters if a.parent.name.startswith("reranker_")]:   # generative: the answer logits
        start, merged_dir = starts[adapter.parent.name], adapter.parent / "model"
        pairs = [JudgePair("q", f"c{i}", False, i, item, candidate)
                 for i, (item, candidate) in enumerate(zip(items, items[1:] + items[:1]))]
        prompts = [build_judge_prompt(p.query, p.candidate) for p in pairs]
        adapted, merged, base = (TransformersJudge(model, batch_size=4, device="cpu", adapter_dir=extra)
                                 for model, extra in ((start, adapter), (merged_dir, None), (start, None)))
        logits = [judge.logits(*_rendered(judge, prompts)) for judge in (adapted, merged, base)]
        worst[f"{adapter.parent.name}/yes-no logits"] = float((logits[0] - logits[1]).abs().max())
        assert float((logits[0] - logits[2]).abs().max()) > 1e-4, f"{adapter} changes nothing"
    for adapter in [a for a in adapters if not a.parent.name.startswith("reranker_")]:
        start, merged_dir = starts[adapter.parent.name], adapter.parent / "model"
        for name, mode in MODES.items():
            adapted = Embedder.from_pretrained(start, adapter, mode, device="cpu").encode(items)
            merged = Embedder.from_pretrained(merged_dir, mode=mode, device="cpu").encode(items)
            base = Embedder.from_pretrained(start, mode=mode, device="cpu").encode(items)
            worst[f"{adapter.parent.name}/{name}"] = float(torch.as_tensor(adapted - merged).abs().max())
            assert float(torch.as_tensor(adapted - base).abs().max()) > 1e-3, f"{adapter} changes nothing"
    assert max(worst.values()) <= TOL, worst
