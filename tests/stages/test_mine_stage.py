"""The mine stage on the small synthetic world with the untrained tiny model."""
from pathlib import Path

import pytest

from uniembed.artifacts import read_parquet
from uniembed.config import compose_config
from uniembed.mine.schemas import MINED
from uniembed.stages import mine

ROOT = Path(__file__).resolve().parents[2]


def cfg(tmp_path, curated, model, *extra):
    return compose_config([f"paths.resources={tmp_path}", f"stage.model_dir={model}", f"stage.curated_dir={curated}",
                           f"stage.cache_dir={tmp_path / 'cache'}", f"stage.out_dir={tmp_path / 'mining'}",
                           "stage.progress=false", "recipe.device=cpu", "recipe.mine.top_k=10", *extra], ROOT / "config")


def test_mine_stage_writes_top_k_without_positives(tiny_qwen2vl, small_world, tmp_path):
    curated = small_world["curated"]["mbeir"].parent
    summary = mine.run(cfg(tmp_path, curated, tiny_qwen2vl))
    mined = read_parquet(tmp_path / "mining" / "mined.parquet", MINED).to_pylist()
    queries = read_parquet(curated / "mbeir" / "queries.parquet").to_pylist()
    train = {q["query_id"]: set(q["positive_ids"]) for q in queries if q["split"] == "train"}
    assert summary["queries"] == len(train) and summary["rows"] == 10 * len(train) == len(mined)
    assert all(m["candidate_id"] not in train[m["query_id"]] for m in mined)
    by_query = {}
    for m in mined:
        by_query.setdefault(m["query_id"], []).append(m)
    for rows in by_query.values():
        assert [r["rank"] for r in rows] == list(range(1, 11))
        sims = [r["similarity"] for r in rows]
        assert sims == sorted(sims, reverse=True)
    capped = mine.run(cfg(tmp_path, curated, tiny_qwen2vl, f"recipe.mine.delta={sorted(m['similarity'] for m in mined)[len(mined) // 2]}"))
    assert capped["rows"] > 0


def test_mine_stage_rejects_an_unknown_pool_choice(tiny_qwen2vl, small_world, tmp_path):
    with pytest.raises(SystemExit, match="must be 'global' or 'own'"):
        mine.run(cfg(tmp_path, small_world["curated"]["mbeir"].parent, tiny_qwen2vl, "recipe.mine.pool=nearby"))


def test_mine_in_parts_gives_the_one_job_bytes_and_refuses_a_missing_part(tiny_qwen2vl, small_world, tmp_path):
    """recipe.mine.parts: 3 encode parts of whole cache shards, then the mine from their shards, equal to one job's."""
    curated = small_world["curated"]["mbeir"].parent
    mine.run(cfg(tmp_path / "one", curated, tiny_qwen2vl, "recipe.evaluate.shard_size=16"))
    split = (tmp_path / "split", "recipe.evaluate.shard_size=16", "stage.parts=3", f"stage.part_dir={tmp_path / 'parts'}")
    records = [mine.run(cfg(split[0], curated, tiny_qwen2vl, *split[1:], f"stage.part={p}")) for p in range(3)]
    assert [[e["rows"] for e in r["entries"]] for r in records][1] != [[0, 0]] * 2     # every part holds shards
    assert not (split[0] / "mining" / "mined.parquet").exists()
    (tmp_path / "parts" / "part-1-of-3.json").rename(tmp_path / "part-1.json")
    with pytest.raises(SystemExit, match="part-1-of-3.json: mine encode part 1 of 3 is missing"):
        mine.run(cfg(split[0], curated, tiny_qwen2vl, *split[1:]))
    (tmp_path / "part-1.json").rename(tmp_path / "parts" / "part-1-of-3.json")
    mine.run(cfg(split[0], curated, tiny_qwen2vl, *split[1:]))
    assert (split[0] / "mining" / "mined.parquet").read_bytes() == (tmp_path / "one" / "mining" / "mined.parquet").read_bytes()
    entries = sorted((tmp_path / "one" / "cache").iterdir())
    assert [e.name for e in entries] == sorted(e.name for e in (split[0] / "cache").iterdir())
    for entry in entries:
        assert (entry / "embeddings.npy").read_bytes() == (split[0] / "cache" / entry.name / "embeddings.npy").read_bytes()
