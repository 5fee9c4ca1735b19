"""Zero-shot scoring (UniME-V2 Table 2, U-MARVEL Table 8): Recall@k over a query's pool, CIRCO's mAP@k, the
composed reference left out of its ranking, CIRR's subset over the query's own candidates, SugarCrepe's strict pair
accuracy; each against a direct computation on hand-made embeddings."""
import numpy as np
import pyarrow as pa
import pytest

from uniembed.evaluate.tables import render_tables
from uniembed.evaluate.zeroshot import evaluate_zeroshot, reference_ids


def _unit(v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def _query(qid, dataset, task, positives, pool=None, candidates=(), image=None):
    return {"query_id": qid, "dataset": dataset, "task_id": task, "pool": pool, "positive_ids": list(positives),
            "candidate_ids": list(candidates), "image_path": image}


def _pools(members):
    return pa.Table.from_pylist([{"pool": p, "candidate_id": c} for p, ids in members.items() for c in ids])


def _value(rows, dataset, metric):
    (row,) = [r for r in rows if r["dataset"] == dataset and r["metric"] == metric]
    return row["value"]


def test_recall_at_k_over_each_querys_pool():
    rng = np.random.default_rng(0)
    cv = {f"c{i}": _unit(rng.normal(size=8)) for i in range(20)}
    queries = [_query(f"q{i}", "set", 0, [f"c{i}"], pool="set_t2i_test") for i in range(6)]
    qv = {q["query_id"]: _unit(rng.normal(size=8)) for q in queries}
    rows = evaluate_zeroshot("karpathy", pa.Table.from_pylist(queries), _pools({"set_t2i_test": list(cv)}), qv, cv)
    for k in (1, 5, 10):
        direct = []   # the rank of each positive among all 20 by score (no ties with random vectors)
        for q in queries:
            scores = {c: float(qv[q["query_id"]] @ v) for c, v in cv.items()}
            rank = sorted(scores, key=lambda c: -scores[c]).index(q["positive_ids"][0]) + 1
            direct.append(rank <= k)
        assert _value(rows, "set", f"Recall@{k}") == pytest.approx(100 * np.mean(direct))
    assert {r["n_queries"] for r in rows} == {6} and {r["benchmark"] for r in rows} == {"zeroshot"}


def test_circo_map_leaves_the_reference_out_and_divides_by_min_r_k():
    # scores: ref 0.9 > a 0.8 > x 0.7 > b 0.6 > others; positives a, b (CIRCO's several ground truths)
    q = _unit(np.ones(8))
    scores = {"ref": 0.9, "a": 0.8, "x": 0.7, "b": 0.6, "y": 0.5, "z": 0.4}
    cv = {c: q * s for c, s in scores.items()}   # q . c = s exactly
    query = _query("q", "circo", 7, ["a", "b"], pool="circo_val", image="/img/ref.jpg")
    candidates = pa.Table.from_pylist([{"candidate_id": c, "image_path": f"/img/{c}.jpg"} for c in scores])
    refs = reference_ids(pa.Table.from_pylist([query]), candidates)
    assert refs == {"q": "ref"}
    rows = evaluate_zeroshot("circo", pa.Table.from_pylist([query]), _pools({"circo_val": list(scores)}),
                             {"q": q}, cv, refs)
    # without the reference: a@1, x@2, b@3 -> AP@5 = (1/1 + 2/3) / min(2, 5)
    assert _value(rows, "circo", "mAP@5") == pytest.approx(100 * (1 + 2 / 3) / 2)
    kept = evaluate_zeroshot("circo", pa.Table.from_pylist([query]), _pools({"circo_val": list(scores)}), {"q": q}, cv)
    assert _value(kept, "circo", "mAP@5") == pytest.approx(100 * (1 / 2 + 2 / 4) / 2)   # ref first: a@2, b@4


def test_cirr_subset_ranks_the_querys_own_candidates():
    q = np.array([1.0, 0.0])
    cv = {"t": np.array([0.5, 0.0]), "u": np.array([0.9, 0.0]), "v": np.array([0.1, 0.0]), "w": np.array([0.7, 0.0])}
    query = _query("q", "cirr_subset", 7, ["t"], candidates=["t", "u", "v"])
    rows = evaluate_zeroshot("cirr", pa.Table.from_pylist([query]), None, {"q": q}, cv)
    assert [(r["metric"], r["value"]) for r in rows] == [("Recall@1", 0.0), ("Recall@2", 100.0), ("Recall@3", 100.0)]


def test_sugarcrepe_counts_a_tie_as_a_failure():
    q = np.array([1.0, 0.0])
    cv = {"p1": np.array([0.8, 0.0]), "n1": np.array([0.3, 0.0]), "p2": np.array([0.5, 0.0]),
          "n2": np.array([0.5, 0.0]), "p3": np.array([0.1, 0.0]), "n3": np.array([0.6, 0.0])}
    queries = [_query(f"q{i}", "crepe_swap", 3, [f"p{i}"], candidates=[f"p{i}", f"n{i}"]) for i in (1, 2, 3)]
    rows = evaluate_zeroshot("sugarcrepe", pa.Table.from_pylist(queries), None, {f"q{i}": q for i in (1, 2, 3)}, cv)
    assert _value(rows, "crepe_swap", "accuracy") == pytest.approx(100 / 3)
    table = render_tables([{**r, "tag": "m"} for r in rows], "markdown", "t")
    assert "UniME-V2 Table 2 layout" in table and "crepe_swap acc." in table


def test_a_positive_outside_the_pool_and_an_unknown_format_are_errors():
    query = _query("q", "set", 0, ["gone"], pool="p")
    with pytest.raises(ValueError, match="query q: positives \\['gone'\\] are not in pool 'p'"):
        evaluate_zeroshot("karpathy", pa.Table.from_pylist([query]), _pools({"p": ["c"]}), {"q": np.ones(2)},
                          {"c": np.ones(2)})
    with pytest.raises(ValueError, match="not a zero-shot format"):
        evaluate_zeroshot("mbeir", pa.Table.from_pylist([query]), None, {}, {})
