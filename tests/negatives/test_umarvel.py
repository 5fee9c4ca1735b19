"""U-MARVEL filtered top-k: threshold (strict), rank order, no padding."""
from __future__ import annotations

import pytest

from uniembed.negatives.umarvel import select_umarvel

CANDS = ["c0", "c1", "c2", "c3", "c4", "c5"]
SIMS = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6]     # mined rank order


def test_threshold_then_top_k_in_rank_order():
    sel = select_umarvel(CANDS, SIMS, threshold=0.85, k=2)
    assert sel.removed_ids == ("c0", "c1") and sel.false_negatives_removed == 2   # 0.85 is kept
    assert sel.negative_ids == ("c2", "c3") and sel.negative_scores == (0.85, 0.8)
    assert sel.outcome == "selected"


def test_fewer_than_k_left_is_not_padded():
    sel = select_umarvel(CANDS, SIMS, threshold=0.85, k=10)
    assert sel.negative_ids == ("c2", "c3", "c4", "c5") and sel.outcome == "selected"


def test_nothing_left():
    sel = select_umarvel(CANDS, SIMS, threshold=0.1, k=3)
    assert sel.outcome == "no_candidates" and sel.negative_ids == () and sel.false_negatives_removed == 6


def test_unusable_scores_are_excluded_and_counted():
    sel = select_umarvel(["a", "b", "c"], [None, float("nan"), 0.2], threshold=0.5, k=3)
    assert sel.negative_ids == ("c",) and sel.unscored_excluded == 2


@pytest.mark.parametrize("kwargs, message", [({"k": 0}, "k must"), ({"threshold": None}, "threshold"),
                                             ({"scores": [0.1]}, "scores")])
def test_bad_input(kwargs, message):
    args = {"candidate_ids": ["a", "b"], "scores": [0.1, 0.2], "threshold": 0.5, "k": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        select_umarvel(**args)
