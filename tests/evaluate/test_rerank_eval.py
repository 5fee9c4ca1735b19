"""Recall-then-rerank evaluation (U-MARVEL+ eq. 4) against the recall model's own evaluation."""
import numpy as np
import pyarrow.compute as pc
import pytest

from uniembed.artifacts import read_parquet
from uniembed.data.schemas import DATASETS, POOLS, QUERIES
from uniembed.evaluate.mbeir import evaluate_mbeir
from uniembed.evaluate.mmeb import evaluate_mmeb
from uniembed.evaluate.rerank import recall_lists, rerank_pairs
from uniembed.rerank.fusion import rerank_rows


def _vectors(ids, seed):
    rng = np.random.default_rng(seed)
    v = rng.standard_normal((len(ids), 16)).astype(np.float32)
    return dict(zip(ids, v / np.linalg.norm(v, axis=1, keepdims=True)))


@pytest.fixture(scope="module")
def world(small_world):
    mbeir, mmeb = small_world["curated"]["mbeir"], small_world["curated"]["mmeb"]
    q_b, q_m = read_parquet(mbeir / "queries.parquet", QUERIES), read_parquet(mmeb / "queries.parquet", QUERIES)
    q_b, q_m = q_b.filter(pc.equal(q_b["split"], "test")), q_m.filter(pc.equal(q_m["split"], "eval"))
    pools = read_parquet(mbeir / "pools.parquet", POOLS)
    cands = sorted(set(pools["candidate_id"].to_pylist()) | {c for ids in q_m["candidate_ids"].to_pylist() for c in ids})
    return {"mbeir": q_b, "mmeb": q_m, "pools": pools, "datasets": read_parquet(mmeb / "datasets.parquet", DATASETS),
            "qv": _vectors(q_b["query_id"].to_pylist() + q_m["query_id"].to_pylist(), 0), "cv": _vectors(cands, 1)}


def _lists(w, depth):
    lists = [lst for s in ("local", "global") for lst in recall_lists("mbeir", w["mbeir"], w["qv"], w["cv"], depth,
                                                                        setting=s, pools=w["pools"], split="test")]
    return lists + recall_lists("mmeb", w["mmeb"], w["qv"], w["cv"], depth, split="eval", datasets=w["datasets"])


def _key(rows):
    return {(r["benchmark"], r["setting"], r["dataset"], r["task_id"]): (r["metric"], round(r["value"], 9), r["n_queries"])
            for r in rows}


def test_alpha_one_reproduces_the_recall_models_evaluation(world):
    lists = _lists(world, depth=10)
    noise = np.random.default_rng(2)
    scores = {(lst.query_id, c): float(noise.random()) for lst in lists for c in lst.candidate_ids}
    expected = [r for s in ("local", "global") for r in evaluate_mbeir(world["mbeir"], world["pools"], world["qv"], world["cv"], s)]
    expected += evaluate_mmeb(world["mmeb"], world["datasets"], world["qv"], world["cv"])
    assert _key(rerank_rows(lists, scores, 10, alpha=1.0)) == _key(expected)


def test_an_oracle_reranker_finds_every_positive_within_the_reranked_depth(world):
    depth = 10
    lists = _lists(world, depth)
    oracle = {(lst.query_id, c): float(c in lst.positive_ids) for lst in lists for c in lst.candidate_ids}
    rows = _key(rerank_rows(lists, oracle, depth, alpha=0.0))
    by_group = {}
    for lst in lists:      # independent: depth (10) >= every k, so a hit iff a positive is in the recall top 10
        key = (lst.benchmark, lst.setting, lst.dataset, lst.task_id)
        by_group.setdefault(key, []).append(float(any(c in lst.positive_ids for c in lst.candidate_ids[:depth])))
    assert {k: round(100 * np.mean(v), 9) for k, v in by_group.items()} == {k: v[1] for k, v in rows.items()}


def test_pairs_cover_each_lists_top_depth_once(world):
    lists = _lists(world, depth=3)
    items = {c: object() for c in world["cv"]}
    queries = {q: object() for q in world["qv"]}
    pairs = rerank_pairs(lists, items, queries, depth=3)
    keys = [(p.query_id, p.candidate_id) for p in pairs]
    assert len(keys) == len(set(keys))
    assert set(keys) == {(lst.query_id, c) for lst in lists for c in lst.candidate_ids[:3]}
    assert all(p.is_positive == (p.candidate_id in next(l for l in lists if l.query_id == p.query_id).positive_ids)
               for p in pairs)
