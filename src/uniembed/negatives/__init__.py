"""Hard-negative selection after mining and judging (docs/hard-negatives.md, the filter).

Two strategies, one pure per-query function each, both returning a :class:`Selection`:
:func:`~uniembed.negatives.unime_v2.select_unime_v2` (UniME-V2, "Hard Negative Sampling") and
:func:`~uniembed.negatives.umarvel.select_umarvel` (U-MARVEL §3.2.2). :mod:`.select` applies one to
the whole mined + judged tables and writes the ``HARD_NEGATIVES`` table with a summary.
"""
from __future__ import annotations

from dataclasses import dataclass

#: Per-query outcomes. The first three carry negatives; the last two carry none and are counted.
OUTCOMES = ("selected", "padded", "fallback_random", "no_positive_score", "no_candidates")


@dataclass(frozen=True)
class Selection:
    """One query's hard negatives (best first) and how they were obtained.

    ``removed_ids`` are the candidates dropped as false negatives (``false_negatives_removed`` of
    them); ``unscored_excluded`` counts candidates without a usable score (failed judge row, null
    or non-finite score, no judge row), which never enter the selection.
    """

    negative_ids: tuple[str, ...]
    negative_scores: tuple[float, ...]
    outcome: str
    false_negatives_removed: int
    removed_ids: tuple[str, ...] = ()
    unscored_excluded: int = 0


def usable(score: float | None) -> bool:
    """A score is usable when present and finite (a failed judge row has a null score)."""
    return score is not None and score == score and abs(score) != float("inf")
