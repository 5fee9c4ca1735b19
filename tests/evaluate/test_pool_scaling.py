"""Pool scaling (VisME Table 7): the distractors never show an evaluated identity, are drawn the same way every time,
are encoded once through the embedding cache, and a bigger pool can only push a target down the ranking."""
import numpy as np
import pytest

from uniembed.data.synthetic.identity import VIEWS, draw_identities
from uniembed.data.synthetic.identity_tasks import build_tasks
from uniembed.evaluate.pool_scaling import (DISTRACTOR_VIEWS, distractor_identities, distractor_item, pool_scaling,
                                            relative_drops)

EVALUATED = draw_identities(seed=1, groups=2, per_group=3)


def test_distractors_are_every_other_identity_in_a_fixed_order():
    others = distractor_identities(EVALUATED)
    taken = {(i.shape, i.color, i.mark) for i in EVALUATED}
    assert not {(i.shape, i.color, i.mark) for i in others} & taken
    assert len(others) == 6 * 6 * 420 - len(EVALUATED) and others == distractor_identities(EVALUATED)
    assert set(DISTRACTOR_VIEWS) == set(VIEWS)
    a, b = (np.asarray(distractor_item(others, 12345).image) for _ in range(2))
    assert np.array_equal(a, b)   # a row is the same picture however the rows are batched or resumed


def test_pools_grow_monotonically_worse_and_the_distractors_come_from_the_cache(tiny_qwen2vl, tmp_path):
    from uniembed.embed.embedder import Embedder

    embedder = Embedder.from_pretrained(tiny_qwen2vl, device="cpu")
    tasks = build_tasks(seed=1, groups=2, per_group=3)
    sizes = [60, 120, 240]
    rows = pool_scaling(embedder, tasks, EVALUATED, sizes, tmp_path, model_dir=tiny_qwen2vl, tag="m")
    assert [(r["task"], r["candidates"]) for r in rows] == [(t, n) for t in tasks for n in sizes]
    for task in tasks:
        recall = [r["recall_at_1"] for r in rows if r["task"] == task]
        assert recall == sorted(recall, reverse=True)   # nested pools: a hit in a bigger pool is a hit in a smaller
    assert rows[0]["encode_items_per_s"] > 0
    again = pool_scaling(embedder, tasks, EVALUATED, sizes, tmp_path, model_dir=tiny_qwen2vl, tag="m")
    assert [r["recall_at_1"] for r in again] == [r["recall_at_1"] for r in rows]
    assert again[0]["encode_items_per_s"] is None   # served from the cache, nothing encoded
    drops = relative_drops(rows)
    for task in tasks:
        first, last = (next(r["recall_at_1"] for r in rows if r["task"] == task and r["candidates"] == n)
                       for n in (60, 240))
        assert drops[("m", task)] == pytest.approx(100 * (first - last) / first) if first else np.isnan(drops[("m", task)])
    with pytest.raises(ValueError, match="every pool size must hold"):
        pool_scaling(embedder, tasks, EVALUATED, [10], tmp_path, model_dir=tiny_qwen2vl, tag="m")
