"""UniME-V2 hard-negative sampling (UniME-V2, §"MLLM-as-a-Judge", paragraph "Hard Negative Sampling").

The paper's rules, in order:

1. *False-negative filter*: "False negatives are excluded if their score exceeds a threshold
   α = σ(q, c_t) − β". A candidate is dropped when ``score > alpha`` (strictly; a score equal to
   α is kept), the same rule as sentence-transformers' ``GISTEmbedLoss`` absolute margin
   (``guided_sim_mat > guided_sim - margin``). With several positives, σ(q, c_t) is the lowest
   usable positive score: whatever the judge rates close to the least convincing true match is
   treated as a match. A query without a usable positive score cannot compute α: outcome
   ``"no_positive_score"``, no negatives.
2. *Cyclical sampling*: "To maintain diversity, we apply a cyclical sampling strategy with
   five-step intervals." Our reading (:func:`cyclical_order`): walk the remaining rank-ordered
   list with stride ``interval`` (5) from index 0 (0, 5, 10, ...); at the end wrap around to the
   next offset (1, 6, 11, ..., then 2, 7, ...), and stop when enough are picked. The picks then
   spread over the whole difficulty range instead of being the hardest few, which is the stated
   aim ("diversity"). Over the paper's pool of fifty, one pass (offset 0) yields exactly ten, the
   same ten as the paper's minimum and its fallback size, which supports stride-over-rank.
3. *Minimum*: "If the refined set contains fewer than ten candidates, we duplicate selections to
   ensure a minimum of ten."
4. *Fallback*: "In the rare case where no candidates meet the criteria (<1%), we randomly select
   10 candidates from the initial pool of fifty and assign each a semantic matching score of 1.0."

k and the minimum: the paper keeps a refined set of at least ten per query and trains with
Ω_h = {c_1, ..., c_k}, k = 8 (docs/hard-negative-training.md). We store ``size = max(k, minimum)`` negatives per
query (10 by default) in cyclical order, so the first ``k`` (what the trainer reads) are the
first k cyclical picks and the stored list honours the minimum of ten. When fewer than ``size``
candidates remain, the picks are repeated in their own order (s0, s1, ..., s_{m-1}, s0, s1, ...)
up to ``size``: outcome ``"padded"`` (for k <= minimum exactly the paper's "fewer than ten"). The
fallback draws ``min(size, pool)`` distinct candidates with a per-query seeded generator (see
:func:`query_seed`), repeats them the same way if the pool is smaller, and scores each 1.0.

Candidates without a usable judge score (failed rows) are excluded from the filter, the sampling
and the fallback pool, and counted; the "initial pool" of the fallback is therefore the query's
mined candidates that have a usable score. No usable candidate at all: outcome ``"no_candidates"``.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from . import Selection, usable


def cyclical_order(n: int, interval: int = 5) -> list[int]:
    """All indices of a list of ``n`` in cyclical stride-``interval`` order.

    ``cyclical_order(12, 5) == [0, 5, 10, 1, 6, 11, 2, 7, 3, 8, 4, 9]``.
    """
    if interval < 1:
        raise ValueError(f"interval must be >= 1, got {interval!r}")
    return [i for offset in range(min(interval, n)) for i in range(offset, n, interval)]


def query_seed(seed: int, query_id: str) -> int:
    """A per-query seed, stable across processes and Python versions (unlike ``hash``)."""
    digest = hashlib.sha256(f"{int(seed)}\x00{query_id}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _repeat(items: list, size: int) -> list:
    """``items`` (non-empty, at most ``size``) repeated in their own order until ``size`` long."""
    return [items[j % len(items)] for j in range(size)]


def select_unime_v2(candidate_ids: Sequence[str], scores: Sequence[float | None], positive_score: float | None,
                    *, beta: float, k: int = 8, interval: int = 5, minimum: int = 10, seed: int = 0) -> Selection:
    """One query's UniME-V2 hard negatives.

    ``candidate_ids`` are the mined candidates best (most similar) first, ``scores`` their judge
    scores s = e_yes / (e_yes + e_no) (None = failed), ``positive_score`` σ(q, c_t) or None.
    ``seed`` seeds the fallback draw directly; pass :func:`query_seed` for per-query seeds.
    """
    if len(candidate_ids) != len(scores):
        raise ValueError(f"{len(candidate_ids)} candidate ids but {len(scores)} scores")
    if len(set(candidate_ids)) != len(candidate_ids):
        raise ValueError("candidate ids repeat within the query")
    for name, value in (("k", k), ("interval", interval), ("minimum", minimum)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    if not usable(beta):
        raise ValueError(f"beta must be a finite number, got {beta!r}")
    scored = [(c, float(s)) for c, s in zip(candidate_ids, scores) if usable(s)]
    unscored = len(candidate_ids) - len(scored)
    if not usable(positive_score):
        return Selection((), (), "no_positive_score", 0, (), unscored)
    if not scored:
        return Selection((), (), "no_candidates", 0, (), unscored)
    alpha = float(positive_score) - beta
    removed = tuple(c for c, s in scored if s > alpha)
    refined = [(c, s) for c, s in scored if s <= alpha]
    size = max(k, minimum)
    if not refined:
        draw = np.random.default_rng(seed).choice(len(scored), size=min(size, len(scored)), replace=False)
        ids = _repeat([scored[int(i)][0] for i in draw], size)
        return Selection(tuple(ids), (1.0,) * len(ids), "fallback_random", len(removed), removed, unscored)
    picks = [refined[i] for i in cyclical_order(len(refined), interval)[:size]]
    outcome = "padded" if len(picks) < size else "selected"
    picks = _repeat(picks, size)
    return Selection(tuple(c for c, _ in picks), tuple(s for _, s in picks), outcome, len(removed), removed, unscored)
