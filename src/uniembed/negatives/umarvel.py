"""U-MARVEL filtered top-k hard negatives (U-MARVEL §3.2.2, Finding 5, Table 5 ID-2).

The paper: "(2) Filtered Hard Negative: For each query, we filter out negative samples that
exceed a predefined threshold (considered as false negatives) and then select the top-k negative
samples as hard negatives; (3) Balanced Training: ... we select a suitable k-value and mix these
hard negatives with other in-batch negatives."

Our reading: the score is the mined embedding similarity ("compute similarity scores (excluding
positive matches), and rank candidates"), or, by choice, the judge score; a candidate is a false
negative when ``score > threshold`` ("exceed": a score equal to the threshold is kept); the
remaining candidates keep their mined rank order and the first ``k`` are the hard negatives.
Nothing is padded or drawn at random: a query left with fewer than ``k`` keeps what remains
(``"selected"``, counted by the summary), and the trainer mixes them with in-batch negatives.
The paper gives no threshold or k value, so both are required parameters. Candidates without a
usable score are excluded and counted; none left at all: outcome ``"no_candidates"``.
"""
from __future__ import annotations

import numbers
from collections.abc import Sequence

from . import Selection, usable


def select_umarvel(candidate_ids: Sequence[str], scores: Sequence[float | None], *, threshold: float,
                   k: int) -> Selection:
    """One query's U-MARVEL hard negatives: drop ``score > threshold``, keep the top ``k`` by rank.

    ``candidate_ids`` are the mined candidates best first; ``scores`` the chosen score per
    candidate (None = unavailable). The returned scores are the ones the filter used.
    """
    if len(candidate_ids) != len(scores):
        raise ValueError(f"{len(candidate_ids)} candidate ids but {len(scores)} scores")
    if len(set(candidate_ids)) != len(candidate_ids):
        raise ValueError("candidate ids repeat within the query")
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not usable(threshold):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    scored = [(c, float(s)) for c, s in zip(candidate_ids, scores) if usable(s)]
    unscored = len(candidate_ids) - len(scored)
    removed = tuple(c for c, s in scored if s > threshold)
    kept = [(c, s) for c, s in scored if s <= threshold][:k]
    outcome = "selected" if kept else "no_candidates"
    return Selection(tuple(c for c, _ in kept), tuple(s for _, s in kept), outcome, len(removed), removed, unscored)
