"""UniME-V2 hard-negative sampling: each rule against hand-worked picks."""
from __future__ import annotations

import numpy as np
import pytest

from uniembed.negatives.unime_v2 import cyclical_order, query_seed, select_unime_v2


def ids(n, prefix="c"):
    return [f"{prefix}{i:02d}" for i in range(n)]


def test_cyclical_order_walks_stride_five_then_wraps_to_the_next_offset():
    assert cyclical_order(23, 5)[:8] == [0, 5, 10, 15, 20, 1, 6, 11]
    assert cyclical_order(12, 5) == [0, 5, 10, 1, 6, 11, 2, 7, 3, 8, 4, 9]
    assert cyclical_order(3, 5) == [0, 1, 2]
    assert cyclical_order(0, 5) == []
    assert sorted(cyclical_order(50, 5)) == list(range(50))
    assert cyclical_order(50, 5)[:10] == list(range(0, 50, 5))  # one pass over fifty = ten picks


def test_23_remaining_stores_ten_cyclical_picks_and_the_first_k_are_the_first_eight():
    cands = ids(23)
    sel = select_unime_v2(cands, [0.1] * 23, 0.9, beta=0.1)
    expected = [0, 5, 10, 15, 20, 1, 6, 11, 16, 21]   # size = max(k=8, minimum=10)
    assert sel.negative_ids == tuple(cands[i] for i in expected)
    assert sel.negative_ids[:8] == tuple(cands[i] for i in [0, 5, 10, 15, 20, 1, 6, 11])
    assert sel.outcome == "selected" and sel.false_negatives_removed == 0
    assert sel.negative_scores == (0.1,) * 10


def test_alpha_filter_is_strict_greater_than():
    # alpha = 0.75 - 0.25 = 0.5 exactly: a score of 0.5 stays, the next float above it goes.
    above = float(np.nextafter(0.5, 1.0))
    sel = select_unime_v2(["eq", "above", "low"], [0.5, above, 0.2], 0.75, beta=0.25, minimum=3, k=3)
    assert sel.removed_ids == ("above",) and sel.false_negatives_removed == 1
    assert sel.negative_ids == ("eq", "low", "eq") and sel.outcome == "padded"


def test_filter_then_cyclical_sampling_over_the_remaining_ranked_list():
    cands = ids(14)
    scores = [0.2] * 14
    scores[2] = scores[7] = 0.95                     # false negatives (alpha = 0.8)
    sel = select_unime_v2(cands, scores, 0.9, beta=0.1)
    remaining = [c for i, c in enumerate(cands) if i not in (2, 7)]   # 12 left
    assert sel.removed_ids == ("c02", "c07")
    assert sel.negative_ids == tuple(remaining[i] for i in [0, 5, 10, 1, 6, 11, 2, 7, 3, 8])
    assert sel.negative_ids[:4] == ("c00", "c06", "c12", "c01")
    assert sel.outcome == "selected"


def test_fewer_than_ten_remaining_are_duplicated_in_pick_order():
    sel = select_unime_v2(["a", "b", "c"], [0.3, 0.2, 0.1], 0.9, beta=0.1)
    assert sel.negative_ids == ("a", "b", "c", "a", "b", "c", "a", "b", "c", "a")
    assert sel.negative_scores == (0.3, 0.2, 0.1, 0.3, 0.2, 0.1, 0.3, 0.2, 0.1, 0.3)
    assert sel.outcome == "padded"
    seven = ids(7)
    sel = select_unime_v2(seven, [0.1] * 7, 0.9, beta=0.1)   # cyclical over 7: 0 5 1 6 2 3 4
    assert sel.negative_ids == tuple(seven[i] for i in [0, 5, 1, 6, 2, 3, 4, 0, 5, 1])


def test_exactly_ten_is_not_padded_nine_is():
    assert select_unime_v2(ids(10), [0.1] * 10, 0.9, beta=0.1).outcome == "selected"
    nine = select_unime_v2(ids(9), [0.1] * 9, 0.9, beta=0.1)
    assert nine.outcome == "padded" and len(nine.negative_ids) == 10 and len(set(nine.negative_ids)) == 9


def test_k_above_minimum_sets_the_size():
    sel = select_unime_v2(ids(11), [0.1] * 11, 0.9, beta=0.1, k=12, minimum=10)
    assert len(sel.negative_ids) == 12 and sel.outcome == "padded"
    assert sel.negative_ids[-1] == sel.negative_ids[0]


def test_fallback_draws_ten_distinct_seeded_candidates_with_score_one():
    cands = ids(50)
    sel = select_unime_v2(cands, [0.95] * 50, 0.9, beta=0.1, seed=7)
    assert sel.outcome == "fallback_random" and sel.false_negatives_removed == 50
    assert len(sel.negative_ids) == 10 and len(set(sel.negative_ids)) == 10 and set(sel.negative_ids) <= set(cands)
    assert sel.negative_scores == (1.0,) * 10
    draw = np.random.default_rng(7).choice(50, size=10, replace=False)
    assert sel.negative_ids == tuple(cands[i] for i in draw)
    assert select_unime_v2(cands, [0.95] * 50, 0.9, beta=0.1, seed=7) == sel
    others = {select_unime_v2(cands, [0.95] * 50, 0.9, beta=0.1, seed=s).negative_ids for s in range(5)}
    assert len(others) > 1


def test_fallback_from_a_small_pool_repeats_the_draw_in_order():
    sel = select_unime_v2(ids(4), [0.99] * 4, 0.9, beta=0.1, seed=3)
    assert sel.outcome == "fallback_random" and len(sel.negative_ids) == 10
    assert sorted(sel.negative_ids[:4]) == ids(4) and sel.negative_ids[4:8] == sel.negative_ids[:4]


def test_query_seed_is_stable_and_per_query():
    assert query_seed(0, "q1") == query_seed(0, "q1")
    assert len({query_seed(0, "q1"), query_seed(0, "q2"), query_seed(1, "q1")}) == 3


def test_failed_candidate_scores_are_excluded_and_counted():
    sel = select_unime_v2(["f", "a", "n", "b"], [None, 0.2, float("nan"), 0.1], 0.9, beta=0.1, k=2, minimum=2)
    assert sel.negative_ids == ("a", "b") and sel.unscored_excluded == 2 and sel.false_negatives_removed == 0
    # a failed candidate is never a false negative nor part of the fallback pool
    sel = select_unime_v2(["f", "x"], [None, 0.95], 0.9, beta=0.1, seed=0)
    assert sel.outcome == "fallback_random" and set(sel.negative_ids) == {"x"}


def test_missing_positive_score_gives_no_negatives():
    for positive in (None, float("nan")):
        sel = select_unime_v2(ids(5), [0.1] * 5, positive, beta=0.1)
        assert sel.outcome == "no_positive_score" and sel.negative_ids == () and sel.false_negatives_removed == 0


def test_no_usable_candidates():
    assert select_unime_v2(ids(3), [None] * 3, 0.9, beta=0.1).outcome == "no_candidates"
    assert select_unime_v2([], [], 0.9, beta=0.1).outcome == "no_candidates"


@pytest.mark.parametrize("kwargs, message", [
    ({"candidate_ids": ["a"], "scores": [0.1, 0.2]}, "scores"),
    ({"candidate_ids": ["a", "a"], "scores": [0.1, 0.2]}, "repeat"),
    ({"k": 0}, "k must"),
    ({"interval": 0}, "interval must"),
    ({"beta": float("nan")}, "beta"),
])
def test_bad_input(kwargs, message):
    args = {"candidate_ids": ["a"], "scores": [0.1], "positive_score": 0.9, "beta": 0.1, **kwargs}
    with pytest.raises(ValueError, match=message):
        select_unime_v2(**args)
