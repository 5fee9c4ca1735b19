"""What a hard-negative row feeds the batch: the sampled positive's own score (UniME-V2's query_pos_scores),
U-MARVEL's padding (repeat the first), fallback rows kept / dropped / masked, and refused bad tables."""
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from uniembed.mine.schemas import HARD_NEGATIVES
from uniembed.embed.embedder import EmbedItem
from uniembed.train.data import TrainingQuery, TrainingSet, assemble_batch, load_training_set, pad_negatives
from uniembed.train.objectives import ObjectiveBatch, make_objective
from uniembed.train.objectives.soft_label import symmetric_kl


def _train_queries(curated):
    return [r for r in pq.read_table(curated / "queries.parquet").to_pylist() if r["split"] == "train"]


def _table(curated, path, *, strategy="unime_v2", params=None, edit=None):
    """One row per train query: 3 negatives, each positive scored 0.5 + its index / 10; ``edit(n, row)`` changes rows."""
    pool = pq.read_table(curated / "candidates.parquet")["candidate_id"].to_pylist()
    rows = []
    for n, q in enumerate(_train_queries(curated)):
        negatives = [c for c in pool if c not in q["positive_ids"]][n % 7: n % 7 + 3]
        positives = list(q["positive_ids"])
        row = {"query_id": q["query_id"], "negative_ids": negatives, "negative_scores": [0.1, 0.2, 0.3],
               "positive_ids": positives, "positive_scores": [0.5 + i / 10 for i in range(len(positives))],
               "positive_score": 0.5, "strategy": strategy, "params": json.dumps(params or {"k": 8, "minimum": 10}),
               "outcome": "selected", "false_negatives_removed": 0}
        if edit:
            edit(n, row)
        rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows, HARD_NEGATIVES), path)
    return path


def test_the_loader_pairs_each_curated_positive_with_its_own_score(tmp_path, small_world):
    curated = small_world["curated"]["mbeir"]

    def scores(n, row):   # a judged positive that is not the curated one is ignored; a failed one drops the query
        row.update(positive_ids=["not-a-positive"] + row["positive_ids"], positive_scores=[0.99, 0.3 + n / 1000])
        if n == 5:
            row["positive_scores"] = [0.99, None]
    table = _table(curated, tmp_path / "hn.parquet", edit=scores)
    data = load_training_set(curated, hard_negatives=table, num_hard_negatives=3, needs_scores=True)
    order = {q["query_id"]: n for n, q in enumerate(_train_queries(curated))}
    assert all(q.positive_scores == (pytest.approx(0.3 + order[q.query_id] / 1000),) for q in data.queries)
    assert data.dropped == {"no_judge_scores:selected": 1} and data.positives_without_score == 1


def test_the_batch_feeds_the_sampled_positives_own_score():
    """UniME-V2's rows pair every positive with its own query_pos_scores: a query whose positives the judge
    scored 0.79 and 0.97 is fed 0.97 when the 0.97 one is sampled (the filter's minimum fed 0.79 for both)."""
    items = {c: EmbedItem(c) for c in ("p1", "p2", "n1", "n2", "o1", "m1", "m2")}
    two = TrainingQuery("q", EmbedItem("q"), ("p1", "p2"), ("n1", "n2"), (), (0.1, 0.2), (0.79, 0.97))
    other = TrainingQuery("r", EmbedItem("r"), ("o1",), ("m1", "m2"), (), (0.3, 0.4), (0.9,))
    data = TrainingSet([two, other], items, "toy")
    seen = {}
    for seed in range(30):
        batch = assemble_batch(data, np.array([0, 1]), np.random.default_rng(seed), num_negatives=2, with_scores=True)
        seen[batch.candidate_ids[0]] = batch.scores[0, 0]
        assert batch.scores[1].tolist() == [0.9, 0.3, 0.4]
    assert seen == {"p1": 0.79, "p2": 0.97}


def test_umarvel_padding_repeats_the_first_negative():
    assert pad_negatives(("a", "b"), 5) == ["a", "b", "a", "a", "a"]   # released code; in-order repetition was a b a b a
    assert pad_negatives(("a", "b", "c"), 5) == ["a", "b", "c", "a", "a"]
    assert pad_negatives(("a", "b", "c", "d", "e", "f"), 5) == ["a", "b", "c", "d", "e"]
    assert pad_negatives((0.3, 0.1), 4) == [0.3, 0.1, 0.3, 0.3]


def test_a_short_row_pads_ids_and_scores_alike_in_the_batch(tmp_path, small_world):
    curated = small_world["curated"]["mbeir"]
    table = _table(curated, tmp_path / "hn.parquet", strategy="umarvel", params={"k": 5, "threshold": 0.9})
    data = load_training_set(curated, hard_negatives=table, num_hard_negatives=5, needs_scores=True)
    batch = assemble_batch(data, np.array([0, 1]), np.random.default_rng(0), num_negatives=5, with_scores=True)
    first = data.queries[0]
    assert batch.candidate_ids[2:7] == pad_negatives(first.negative_ids, 5)
    assert batch.scores[0, 1:].tolist() == pad_negatives(first.negative_scores, 5)


def _fallback_every_third(n, row):
    if n % 3 == 0:
        row.update(negative_scores=[1.0, 1.0, 1.0], outcome="fallback_random")


def test_fallback_rows_are_counted_and_kept_dropped_or_masked(tmp_path, small_world):
    curated = small_world["curated"]["mbeir"]
    table = _table(curated, tmp_path / "hn.parquet", edit=_fallback_every_third)
    n = len(_train_queries(curated))
    fallback = len(range(0, n, 3))
    keep = load_training_set(curated, hard_negatives=table, num_hard_negatives=3, needs_scores=True)
    assert keep.outcomes == {"selected": n - fallback, "fallback_random": fallback}
    assert keep.fallback_fraction() == pytest.approx(fallback / n)
    drop = load_training_set(curated, hard_negatives=table, num_hard_negatives=3, needs_scores=True, fallback_rows="drop")
    assert len(drop.queries) == n - fallback and drop.dropped == {"fallback_random_dropped": fallback}
    assert drop.fallback_fraction() == 0
    indices = np.arange(6)
    masked = assemble_batch(keep, indices, np.random.default_rng(0), num_negatives=3, with_scores=True, mask_fallback=True)
    assert masked.score_mask.tolist() == [not keep.queries[i].fallback for i in indices]
    with pytest.raises(ValueError, match="fallback_rows must be one of"):
        load_training_set(curated, hard_negatives=table, num_hard_negatives=3, fallback_rows="ignore")


def test_the_masked_soft_label_loss_averages_the_unmasked_rows_only():
    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(4, 5, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=torch.float64)
    assert symmetric_kl(p, q, mask).item() == pytest.approx(symmetric_kl(p[[0, 2]], q[[0, 2]]).item(), rel=1e-12)
    assert symmetric_kl(p, q, torch.zeros(4, dtype=torch.float64)).item() == 0.0
    b, k = 2, 2
    qv = torch.nn.functional.normalize(torch.randn(b, 4, generator=g, dtype=torch.float64), dim=-1)
    cv = torch.nn.functional.normalize(torch.randn(b + b * k, 4, generator=g, dtype=torch.float64), dim=-1)
    scores = np.array([[0.4, 1.0, 1.0], [0.9, 0.1, 0.2]])
    objective = make_objective({"name": "soft_label", "num_negatives": k, "fallback_rows": "mask"}).double()
    masked = objective.loss(qv, cv, ObjectiveBatch(b, k, np.zeros((b, b + b * k), bool), scores, np.array([False, True])))[0]
    only = objective.loss(qv[1:], torch.cat([cv[1:2], cv[b + k:]]), ObjectiveBatch(1, k, np.zeros((1, 1 + k), bool),
                                                                                     scores[1:]))[0]
    assert masked.item() == pytest.approx(only.item(), rel=1e-12)
    with pytest.raises(ValueError, match="fallback_rows must be one of"):
        make_objective({"name": "soft_label", "fallback_rows": "ignore"})


@pytest.mark.parametrize("bad", [1.7, float("nan"), -0.2, float("inf")])
def test_a_judge_score_outside_0_1_or_not_finite_is_refused_naming_file_query_and_candidate(tmp_path, small_world, bad):
    curated = small_world["curated"]["mbeir"]

    def corrupt(n, row):
        if n == 4:
            row["negative_scores"] = [0.1, bad, 0.3]
    table = _table(curated, tmp_path / "hn.parquet", edit=corrupt)
    row = pq.read_table(table).to_pylist()[4]
    with pytest.raises(ValueError) as error:
        load_training_set(curated, hard_negatives=table, num_hard_negatives=3, needs_scores=True)
    message = str(error.value)
    assert str(table) in message and row["query_id"] in message and row["negative_ids"][1] in message
    assert "[0, 1]" in message and (str(bad) in message or math.isnan(bad))


def test_a_similarity_table_allows_negative_cosines_but_not_beyond_one(tmp_path, small_world):
    curated = small_world["curated"]["mbeir"]
    params = {"k": 5, "threshold": 0.9, "score_column": "similarity"}
    ok = _table(curated, tmp_path / "ok.parquet", strategy="umarvel", params=params,
                edit=lambda n, row: row.update(negative_scores=[-0.3, 0.2, 0.3]))
    assert load_training_set(curated, hard_negatives=ok, num_hard_negatives=3).queries
    bad = _table(curated, tmp_path / "bad.parquet", strategy="umarvel", params=params,
                 edit=lambda n, row: row.update(negative_scores=[-1.3, 0.2, 0.3]))
    with pytest.raises(ValueError, match=r"score -1.3 is not a finite number in \[-1, 1\]"):
        load_training_set(curated, hard_negatives=bad, num_hard_negatives=3)


def test_more_negatives_than_the_filter_stores_is_refused_naming_both(tmp_path, small_world):
    curated = small_world["curated"]["mbeir"]
    table = _table(curated, tmp_path / "hn.parquet", params={"k": 8, "minimum": 10, "beta": 0.1})
    with pytest.raises(ValueError, match=r"asks for 12 negatives per query but the unime_v2 table stores at most 10"):
        load_training_set(curated, hard_negatives=table, num_hard_negatives=12, needs_scores=True)
    assert load_training_set(curated, hard_negatives=table, num_hard_negatives=10, needs_scores=True).queries
