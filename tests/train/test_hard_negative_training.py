"""Hard-negative training through the one trainer: U-MARVEL's filtered negatives (info_nce) and
UniME-V2's judge soft labels (soft_label) read the filter's table; queries without usable negatives
are dropped and counted before training; resume is bit-exact for both objectives and for U-MARVEL's
distillation, which trains on a table of the same shape."""
import dataclasses
import json
import random

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from uniembed.mine.schemas import HARD_NEGATIVES
from uniembed.train.trainer import train_contrastive

from .settings import make_settings

UMARVEL = make_settings(max_steps=4, save_every=1, objective={"name": "info_nce", "learnable_temperature": True,
                                                              "num_negatives": 2})
UNIME = make_settings(max_steps=4, save_every=1, objective={"name": "soft_label", "num_negatives": 3})
# U-MARVEL §3.3 distillation reads the same table shape (teacher scores in negative_scores / positive_score)
DISTILL = make_settings(max_steps=4, save_every=1, objective={"name": "distill", "temperature": 0.05, "num_negatives": 3})
PARTS = {"umarvel": "info_nce", "unime_v2": "soft_label_kl", "distill": "distill_kl"}


def hard_negatives(curated, path, drop=()):
    """A filter table over the train queries: 3 random non-positive negatives with scores; ``drop`` rows broken."""
    queries = [r for r in pq.read_table(curated / "queries.parquet").to_pylist() if r["split"] == "train"]
    pool = pq.read_table(curated / "candidates.parquet")["candidate_id"].to_pylist()
    rng, rows = random.Random(0), []
    for n, q in enumerate(queries):
        negatives = rng.sample([c for c in pool if c not in q["positive_ids"]], 3)
        positives = list(q["positive_ids"])
        row = {"query_id": q["query_id"], "negative_ids": negatives, "negative_scores": [rng.random() for _ in negatives],
               "positive_score": 0.9, "positive_ids": positives, "positive_scores": [0.9] * len(positives),
               "strategy": "unime_v2", "params": "{}", "outcome": "selected", "false_negatives_removed": 0}
        if n in drop and n % 2 == 0:
            row.update(negative_ids=[], negative_scores=[], outcome="no_candidates")
        elif n in drop:
            row.update(positive_score=None, positive_scores=[None] * len(positives), outcome="no_positive_score")
        rows.append(row)
    pq.write_table(pa.Table.from_pylist(rows, HARD_NEGATIVES), path)
    return path


def run(tmp, name, world, model, settings, negatives, **kwargs):
    return train_contrastive(settings, base_model=model, curated_dir=world["curated"]["mbeir"], out_dir=tmp / name / "out",
                             checkpoint_dir=tmp / name / "ckpt", log_dir=tmp / name / "tb", device="cpu",
                             progress=False, hard_negatives=negatives, **kwargs)


@pytest.mark.parametrize("name, settings", [("umarvel", UMARVEL), ("unime_v2", UNIME), ("distill", DISTILL)])
def test_killed_hard_negative_training_resumes_bit_exactly(tmp_path, small_world, tiny_qwen2vl, name, settings):
    table = hard_negatives(small_world["curated"]["mbeir"], tmp_path / "hn.parquet")
    straight = run(tmp_path, "straight", small_world, tiny_qwen2vl, settings, table)
    assert run(tmp_path, "resumed", small_world, tiny_qwen2vl, settings, table, stop_after=2)["step"] == 2
    resumed = run(tmp_path, "resumed", small_world, tiny_qwen2vl, settings, table)
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in straight["history"]]
    a = load_file(str(tmp_path / "straight" / "out" / "model" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "out" / "model" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(PARTS[name] in h for h in straight["history"])


def test_queries_without_usable_negatives_are_dropped_and_counted(tmp_path, small_world, tiny_qwen2vl):
    table = hard_negatives(small_world["curated"]["mbeir"], tmp_path / "hn.parquet", drop=range(6))
    unime = run(tmp_path, "unime", small_world, tiny_qwen2vl, dataclasses.replace(UNIME, max_steps=1), table)
    assert unime["dropped_queries"] == {"no_negatives:no_candidates": 3, "no_judge_scores:no_positive_score": 3}
    umarvel = run(tmp_path, "umarvel", small_world, tiny_qwen2vl, dataclasses.replace(UMARVEL, max_steps=1), table)
    assert umarvel["dropped_queries"] == {"no_negatives:no_candidates": 3}   # info_nce needs no judge scores
    saved = json.loads((tmp_path / "unime" / "out" / "training_summary.json").read_text())
    assert saved["dropped_queries"] == unime["dropped_queries"]


def test_no_usable_query_fails_at_start_naming_the_filter_summary(tmp_path, small_world, tiny_qwen2vl):
    curated = small_world["curated"]["mbeir"]
    n = sum(1 for r in pq.read_table(curated / "queries.parquet").to_pylist() if r["split"] == "train")
    table = hard_negatives(curated, tmp_path / "hn.parquet", drop=range(0, n, 2))  # even rows lose their negatives
    rows = pq.read_table(table).to_pylist()
    pq.write_table(pa.Table.from_pylist([r for i, r in enumerate(rows) if i % 2 == 0], HARD_NEGATIVES), table)
    with pytest.raises(ValueError, match=r"no 'train' query has usable hard negatives .*filter_summary.json"):
        run(tmp_path, "none", small_world, tiny_qwen2vl, UNIME, table)
