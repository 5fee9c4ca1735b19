"""M-BEIR local/global and MMEB evaluation against direct computations; paper-layout tables."""
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from uniembed.data.schemas import POOLS, QUERIES
from uniembed.evaluate.mbeir import evaluate_mbeir
from uniembed.evaluate.mmeb import evaluate_mmeb, mmeb_summary
from uniembed.evaluate.tables import mbeir_table, mmeb_table


def qrow(qid, dataset, task, pool, positives, candidate_ids=(), split="test"):
    return {"query_id": qid, "source": "s", "dataset": dataset, "task_id": task, "split": split, "instruction": None,
            "text": "t", "image_path": None, "modality": "text", "positive_ids": list(positives), "negative_ids": [],
            "candidate_ids": list(candidate_ids), "pool": pool, "source_file": "f", "source_line": 1}


def unit(*v):
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def world():
    rng = np.random.default_rng(0)
    cands = {f"c{i}": unit(*rng.normal(size=8)) for i in range(40)}
    local = {"A_task0": [f"c{i}" for i in range(20)], "B_task3": [f"c{i}" for i in range(20, 40)]}
    pools = [{"pool": p, "candidate_id": c} for p, ids in local.items() for c in ids]
    pools += [{"pool": "union_test", "candidate_id": c} for c in cands]
    queries, qv = [], {}
    for n in range(30):
        pool = "A_task0" if n < 15 else "B_task3"
        pos = local[pool][n % 20]
        noise = rng.normal(scale=0.9, size=8).astype(np.float32)
        qv[f"q{n}"] = unit(*(cands[pos] + noise))
        queries.append(qrow(f"q{n}", "A" if n < 15 else "Fashion200K", 0 if n < 15 else 3, pool, [pos]))
    return (pa.Table.from_pylist(queries, schema=QUERIES), pa.Table.from_pylist(pools, schema=POOLS), qv, cands, local)


def direct_recall(queries, qv, cands, pool_ids, k):
    hits = []
    for q in queries.to_pylist():
        scores = {c: float(qv[q["query_id"]] @ cands[c]) for c in pool_ids(q)}
        top = sorted(scores, key=lambda c: (-scores[c], [-ord(ch) for ch in c]))[:k]
        hits.append(any(p in top for p in q["positive_ids"]))
    return hits


def test_local_and_global_recall_match_brute_force(world):
    queries, pools, qv, cands, local = world
    for setting, pool_ids in [("local", lambda q: local[q["pool"]]), ("global", lambda q: list(cands))]:
        rows = evaluate_mbeir(queries, pools, qv, cands, setting)
        by = {(r["dataset"], r["task_id"]): r for r in rows}
        a = direct_recall(queries.slice(0, 15), qv, cands, pool_ids, 5)
        b = direct_recall(queries.slice(15), qv, cands, pool_ids, 10)   # Fashion200K task 3 -> Recall@10
        assert by[("A", 0)]["metric"] == "Recall@5" and by[("Fashion200K", 3)]["metric"] == "Recall@10"
        assert by[("A", 0)]["value"] == pytest.approx(100 * np.mean(a))
        assert by[("Fashion200K", 3)]["value"] == pytest.approx(100 * np.mean(b))
        assert by[("A", 0)]["n_queries"] == 15
    local_rows = evaluate_mbeir(queries, pools, qv, cands, "local")
    global_rows = evaluate_mbeir(queries, pools, qv, cands, "global")
    assert sum(r["value"] for r in global_rows) <= sum(r["value"] for r in local_rows)


def test_positive_missing_from_pool_is_an_error(world):
    queries, pools, qv, cands, _ = world
    bad = queries.to_pylist()
    bad[0]["positive_ids"] = ["c39"]  # in B's pool, not A's
    with pytest.raises(ValueError, match="q0: positives \\['c39'\\] are not in pool 'A_task0'"):
        evaluate_mbeir(pa.Table.from_pylist(bad, schema=QUERIES), pools, qv, cands, "local")
    empty = pools.filter(pc.not_equal(pools["pool"], "A_task0"))
    with pytest.raises(ValueError, match="empty or unknown"):
        evaluate_mbeir(queries, empty, qv, cands, "local")


def test_mmeb_precision_at_1_and_averages():
    cv = {"p1": unit(1, 0), "n1": unit(0, 1), "p2": unit(0, 1), "n2": unit(1, 0), "p3": unit(1, 1), "n3": unit(1, 1)}
    qv = {"a": unit(1, 0.1), "b": unit(1, 0.1), "c": unit(1, 1)}
    queries = pa.Table.from_pylist([qrow("a", "D1", 3, None, ["p1"], ["p1", "n1"], "eval"),
                                    qrow("b", "D1", 3, None, ["p2"], ["p2", "n2"], "eval"),
                                    qrow("c", "D2", 3, None, ["p3"], ["p3", "n3"], "eval")], schema=QUERIES)
    datasets = pa.table({"dataset": ["D1", "D2"], "source": ["m", "m"], "meta_task": ["VQA", "Retrieval"],
                         "eval_group": ["IND", "OOD"]})
    rows = evaluate_mmeb(queries, datasets, qv, cv)
    assert {r["dataset"]: r["value"] for r in rows} == {"D1": 50.0, "D2": 100.0}  # c: exact tie -> argmax keeps index 0
    summary = mmeb_summary(rows)
    assert summary["Overall"] == (75.0, 2) and summary["IND"] == (50.0, 1) and summary["Retrieval"] == (100.0, 1)


def test_tables_have_the_papers_layout(world):
    queries, pools, qv, cands, _ = world
    rows = [dict(r, tag="zero_shot") for r in evaluate_mbeir(queries, pools, qv, cands, "local")]
    rows += [dict(r, tag="stage1c", value=r["value"] + 1) for r in rows]
    md = mbeir_table(rows, "local")
    lines = md.strip().splitlines()
    assert lines[0] == "| Task | Dataset | Metric | zero_shot | stage1c |"
    assert lines[2].startswith("| qt→ci | A | Recall@5 |") and lines[3].startswith("| qi→ct | Fashion200K | Recall@10 |")
    avg = np.mean([r["value"] for r in rows if r["tag"] == "zero_shot"])
    assert lines[-1] == f"| Average |  |  | {avg:.1f} | {avg + 1:.1f} |"
    assert "\\begin{tabular}" in mbeir_table(rows, "local", fmt="latex")
    mm = [{"benchmark": "mmeb", "setting": "IND", "dataset": "D", "task_id": None, "meta_task": "VQA", "metric": "P@1",
           "value": 40.0, "n_queries": 3, "tag": "zero_shot"}]
    assert mmeb_table(mm).splitlines()[0] == "| Model | VQA (1) | IND (1) | Overall (1) |"
