"""Stage entry points on the synthetic world: curation of every source, bad input through the stage."""
import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from uniembed.artifacts import read_parquet
from uniembed.config import compose_config
from uniembed.data.errors import SourceFormatError
from uniembed.data.schemas import ARTIFACTS, TASKS
from uniembed.stages import build_model, curate, generate_data

ROOT = Path(__file__).resolve().parents[2]
SMALL = ("{mbeir_train_queries: 24, mbeir_test_queries: 12, mbeir_pool: 60, mmeb_train_rows: 12,"
         " mmeb_eval_rows: 8, mmeb_candidates: 8, mmeb_gallery: 24, nli_triplets: 20, caption_pairs: 12}")


def stage_cfg(resources, *extra):
    return compose_config([f"paths.resources={resources}", f"data.generator.sizes={SMALL}", *extra], ROOT / "config")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    resources = tmp_path_factory.mktemp("resources")
    generate_data.run(stage_cfg(resources))
    return resources


@pytest.mark.parametrize("source", ["mbeir", "mmeb", "nli", "captions"])
def test_curate_stage_writes_schema_checked_tables(generated, tmp_path, source):
    summary = curate.run(stage_cfg(generated, f"stage.source={source}", f"stage.out_dir={tmp_path}", "stage.progress=false"))
    tables = {name: read_parquet(tmp_path / f"{name}.parquet", schema) for name, schema in ARTIFACTS.items()}
    assert summary == json.loads((tmp_path / "summary.json").read_text())
    assert summary["quarantined"] == 0 and summary["kept"] == summary["rows_in"] > 0
    assert tables["queries"].num_rows > 0
    if source == "mbeir":
        q = tables["queries"].to_pylist()
        for split in ("train", "test"):
            assert {r["task_id"] for r in q if r["split"] == split} == {0, 1, 2, 3, 4, 6, 7}
        assert all(r["modality"] == TASKS[r["task_id"]][0] for r in q)
        assert all(r["instruction"] for r in q)
        pools = set(tables["pools"].column("pool").to_pylist())
        assert {"union_train", "union_test", "union_val"} <= pools
        assert sum("_task" in p and not p.endswith("_val") for p in pools) == 7   # test local pools
        assert sum("_task" in p and p.endswith("_val") for p in pools) == 7       # val local pools
    if source == "mmeb":
        meta = {r["dataset"]: r for r in tables["datasets"].to_pylist()}
        assert {m["meta_task"] for m in meta.values() if m["meta_task"]} == {"Classification", "VQA", "Retrieval", "Grounding"}


def test_curate_stage_quarantines_bad_values_and_stops_on_bad_structure(generated, tmp_path):
    data = tmp_path / "resources"
    shutil.copytree(generated, data)
    mbeir = data / "synthetic" / "mbeir"
    image = sorted((mbeir / "mbeir_images").rglob("*.png"))[0]
    image.write_bytes(b"not a png")
    out = tmp_path / "out"
    summary = curate.run(stage_cfg(data, "stage.source=mbeir", f"stage.out_dir={out}", "stage.progress=false"))
    assert summary["reasons"]["corrupt_image"] >= 1 and summary["kept"] + summary["quarantined"] == summary["rows_in"]
    query_file = sorted((mbeir / "query" / "test").glob("*.jsonl"))[0]
    with open(query_file, "a") as f:
        f.write('{"qid": "0:999", "query_txt": "trunc')
    with pytest.raises(SourceFormatError, match=f"{query_file.name}:\\d+: expected one complete JSON object"):
        curate.run(stage_cfg(data, "stage.source=mbeir", f"stage.out_dir={tmp_path / 'out2'}", "stage.progress=false"))
    assert not (tmp_path / "out2").exists()


def test_curate_stage_rejects_unknown_source(generated, tmp_path):
    with pytest.raises(SystemExit, match="unknown source 'mbier'"):
        curate.run(stage_cfg(generated, "stage.source=mbier", f"stage.out_dir={tmp_path}"))


def test_build_model_stage_saves_a_loadable_model(tmp_path):
    from uniembed.model.loading import load_for_embedding
    from uniembed.model.processor import load_processor

    cfg = stage_cfg(tmp_path)
    path = build_model.run(cfg)
    assert Path(path) == Path(cfg.model.path)
    model = load_for_embedding(path)
    processor = load_processor(path)
    assert type(model).__name__ == "Qwen2VLModel" and processor.tokenizer.convert_tokens_to_ids("<|image_pad|>") >= 0


def test_evaluate_stage_on_the_untrained_tiny_model(tiny_qwen2vl, small_world, tmp_path):
    from uniembed.evaluate.results import SCORES
    from uniembed.stages import evaluate

    curated = small_world["curated"]["mbeir"].parent
    args = ["stage.tag=zero_shot", f"stage.model_dir={tiny_qwen2vl}", f"stage.curated_dir={curated}",
            f"stage.cache_dir={tmp_path / 'cache'}", f"stage.out_dir={tmp_path / 'eval'}", "stage.progress=false",
            "recipe.device=cpu", "data.sources={mbeir: {format: mbeir}, mmeb: {format: mmeb},"
            " shapes2: {format: karpathy}, shapes2_crepe: {format: sugarcrepe}}"]
    rows = evaluate.run(stage_cfg(tmp_path, *args))
    scores = read_parquet(tmp_path / "eval" / "scores.parquet", SCORES).to_pylist()
    assert scores == [dict(r) for r in rows]
    settings = {(r["benchmark"], r["setting"]) for r in scores}
    assert {("mbeir", "local"), ("mbeir", "global"), ("mmeb", "IND"), ("mmeb", "OOD")} <= settings
    assert {r["task_id"] for r in scores if r["benchmark"] == "mbeir"} == {0, 1, 2, 3, 4, 6, 7}
    assert all(0.0 <= r["value"] <= 100.0 for r in scores)
    tables = (tmp_path / "eval" / "tables.md").read_text()
    assert "Table 7/13 layout" in tables and "Table 14 layout" in tables and "UniME-V2 Table 1 layout" in tables
    zeroshot = {(r["dataset"], r["task_id"], r["metric"]): r["n_queries"] for r in scores if r["benchmark"] == "zeroshot"}
    images = 12   # SMALL_WORLD's zero-shot images: two captions each
    assert zeroshot[("shapes2", 0, "Recall@1")] == 2 * images and zeroshot[("shapes2", 3, "Recall@10")] == images
    assert {k: n for k, n in zeroshot.items() if k[2] == "accuracy"} == {
        (f"sugarcrepe_{kind}", 3, "accuracy"): images for kind in ("add_obj", "replace_att", "swap_att")}
    assert "UniME-V2 Table 2 layout" in tables and "shapes2 qi→ct R@1" in tables
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(entries) == 8  # queries + candidates for each source
    evaluate.run(stage_cfg(tmp_path, *args))  # same keys: served from the cache, no new entries
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == entries


def test_evaluate_stage_rejects_a_model_dir_without_weights(small_world, tmp_path):
    from uniembed.stages import evaluate

    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "empty")):
        evaluate.run(stage_cfg(tmp_path, "stage.tag=x", f"stage.model_dir={tmp_path / 'empty'}",
                               f"stage.curated_dir={tmp_path}", f"stage.cache_dir={tmp_path}", f"stage.out_dir={tmp_path}"))


def test_rerank_stage_scores_the_recall_top_k_with_the_judge_backend(tiny_qwen2vl, small_world, tmp_path):
    """The tiny model as recall model and as reranker (transformers backend): alpha = 1 gives the recall
    model's own numbers; every pair of every query's top k is scored once."""
    from uniembed.evaluate.results import SCORES
    from uniembed.mine.schemas import JUDGE_SCORES
    from uniembed.stages import evaluate, rerank

    curated = small_world["curated"]["mbeir"].parent
    common = [f"stage.model_dir={tiny_qwen2vl}", f"stage.curated_dir={curated}", f"stage.cache_dir={tmp_path / 'cache'}",
              "stage.progress=false", "recipe.device=cpu", "data.sources={mbeir: {format: mbeir}, mmeb: {format: mmeb}}"]
    section = ("+recipe.rerank={rerankers: {}, recall: zero_shot, top_k: 3, alpha: 1.0, choose_alpha: null,"
               " scoring: {backend: transformers, batch_size: 16, queries_per_shard: 8, top_logprobs: 20}}")
    recall = evaluate.run(stage_cfg(tmp_path, *common, "stage.tag=zero_shot", f"stage.out_dir={tmp_path / 'eval'}"))
    args = [*common, section, "stage.tag=zero_shot+pointwise", f"stage.reranker_dir={tiny_qwen2vl}",
            f"stage.out_dir={tmp_path / 'rerank'}", f"stage.checkpoint_dir={tmp_path / 'shards'}"]
    rows = rerank.run(stage_cfg(tmp_path, *args))
    key = lambda rs: sorted((r["benchmark"], r["setting"], r["dataset"], r["task_id"], round(r["value"], 9)) for r in rs)  # noqa: E731
    assert key(rows) == key([r for r in recall if r["benchmark"] in ("mbeir", "mmeb")])   # not the zero-shot sets
    assert read_parquet(tmp_path / "rerank" / "scores.parquet", SCORES).to_pylist() == [dict(r) for r in rows]
    pairs = read_parquet(tmp_path / "rerank" / "rerank_scores.parquet", JUDGE_SCORES)
    keys = list(zip(pairs["query_id"].to_pylist(), pairs["candidate_id"].to_pylist()))
    assert len(keys) == len(set(keys)) and set(pairs["status"].to_pylist()) == {"ok"}
    assert all(0.0 <= s <= 1.0 for s in pairs["score"].to_pylist())
    with pytest.raises(SystemExit, match="reranker_dir"):
        rerank.run(stage_cfg(tmp_path, *[a for a in args if not a.startswith("stage.reranker_dir")]))


@pytest.mark.parametrize("reranker", ["pointwise", "listwise"])
def test_rerank_in_parts_gives_the_one_job_bytes(tiny_qwen2vl, small_world, tmp_path, reranker):
    """recipe.rerank.scoring.parts: 3 part jobs (shards of pairs, or chunks of lists) and the gather write the
    one-job run's files byte for byte; a part of another split is refused, naming it."""
    from uniembed.stages import evaluate, rerank

    curated = small_world["curated"]["mbeir"].parent
    common = [f"stage.model_dir={tiny_qwen2vl}", f"stage.curated_dir={curated}", f"stage.cache_dir={tmp_path / 'cache'}",
              "stage.progress=false", "recipe.device=cpu", "data.sources={mbeir: {format: mbeir}}",
              "recipe.rerank.recall=zero_shot", "recipe.rerank.top_k=3", "recipe.rerank.choose_alpha=null",
              "recipe.rerank.scoring.queries_per_shard=8", f"stage.reranker_dir={tiny_qwen2vl}",
              f"stage.tag=zero_shot+{reranker}"]
    evaluate.run(stage_cfg(tmp_path, *common[:6], "stage.tag=zero_shot", f"stage.out_dir={tmp_path / 'eval'}"))
    one = [*common, f"stage.out_dir={tmp_path / 'one'}", f"stage.checkpoint_dir={tmp_path / 'shards-one'}"]
    rerank.run(stage_cfg(tmp_path, *one))
    split = [*common, f"stage.out_dir={tmp_path / 'split'}", f"stage.checkpoint_dir={tmp_path / 'shards-split'}",
             "stage.parts=3", f"stage.part_dir={tmp_path / 'parts'}"]
    for part in range(3):
        assert rerank.run(stage_cfg(tmp_path, *split, f"stage.part={part}")) == []
    assert sorted(p.name for p in (tmp_path / "parts").iterdir()) == [f"part-{p}-of-3.parquet" for p in range(3)]
    assert all(pq.read_metadata(tmp_path / "parts" / f"part-{p}-of-3.parquet").num_rows for p in range(3))
    (tmp_path / "parts" / "part-1-of-3.parquet").rename(tmp_path / "part-1.parquet")
    (tmp_path / "parts" / "part-2-of-3.parquet").rename(tmp_path / "parts" / "part-1-of-3.parquet")
    with pytest.raises(SystemExit, match="part-1-of-3.parquet: rerank zero_shot.* part 1 of 3 .*part is 2, expected 1"):
        rerank.run(stage_cfg(tmp_path, *split))
    (tmp_path / "parts" / "part-1-of-3.parquet").rename(tmp_path / "parts" / "part-2-of-3.parquet")
    (tmp_path / "part-1.parquet").rename(tmp_path / "parts" / "part-1-of-3.parquet")
    rerank.run(stage_cfg(tmp_path, *split))
    for name in ("rerank_scores.parquet", "scores.parquet", "rerank_summary.json"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "one" / name).read_bytes(), name


def test_distill_data_then_distillation_training(tiny_qwen2vl, small_world, tmp_path):
    """The teacher table of a sampled share of the training queries (the tiny model as recall model and
    reranker), then the distill objective continuing the recall model on it through the train stage."""
    from uniembed.mine.schemas import HARD_NEGATIVES, JUDGE_SCORES
    from uniembed.stages import distill_data, train

    curated = small_world["curated"]["mbeir"].parent
    entry = "+recipe.distill"
    common = [f"stage.curated_dir={curated}", f"stage.cache_dir={tmp_path / 'cache'}", "stage.progress=false",
              "recipe.device=cpu", "recipe.mine.source=mbeir",
              ("+recipe.rerank={rerankers: {}, recall: zero_shot, top_k: 3, alpha: 0.5, scoring: {backend: transformers,"
               " batch_size: 16, queries_per_shard: 8, top_logprobs: 20}}"),
              (f"{entry}={{from: zero_shot, reranker: pointwise, fraction: 0.5, seed: 0, candidates: 3, alpha: 0.5,"
               " train: {source: mbeir, max_steps: 2, batch_size: 2, optimizer: {lr: 1.0e-4},"
               " objective: {name: distill, temperature: 0.05, num_negatives: 3}}}")]
    summary = distill_data.run(stage_cfg(tmp_path, *common, f"stage.model_dir={tiny_qwen2vl}",
                                         f"stage.reranker_dir={tiny_qwen2vl}", f"stage.out_dir={tmp_path / 'distill'}",
                                         f"stage.checkpoint_dir={tmp_path / 'shards'}"))
    table = read_parquet(tmp_path / "distill" / "hard_negatives.parquet", HARD_NEGATIVES).to_pylist()
    train_ids = [q for q in read_parquet(curated / "mbeir" / "queries.parquet").to_pylist() if q["split"] == "train"]
    assert summary["queries"] == len(table) == round(0.5 * len(train_ids)) and summary["training_queries"] == len(train_ids)
    assert all(len(r["negative_ids"]) == 3 and r["negative_scores"] == sorted(r["negative_scores"], reverse=True)
               for r in table)
    judged = read_parquet(tmp_path / "distill" / "rerank_scores.parquet", JUDGE_SCORES)
    assert set(judged["query_id"].to_pylist()) == {r["query_id"] for r in table}
    result = train.run(stage_cfg(tmp_path, *common, "stage.section=distill", "stage.name=distill",
                                 f"stage.model_dir={tiny_qwen2vl}", f"stage.hard_negatives={tmp_path / 'distill' / 'hard_negatives.parquet'}",
                                 f"stage.out_dir={tmp_path / 'student'}", f"stage.checkpoint_dir={tmp_path / 'ckpt'}",
                                 f"stage.log_dir={tmp_path / 'tb'}"))
    assert result["finished"] and result["objective"] == "distill" and result["num_queries"] == len(table)
    assert "distill_kl" in result["history"][-1]
