"""A study-only judge for the synthetic world: scores from the world's truth plus noise of a chosen ROC-AUC.

UniME-V2 (§3.2, "MLLM-as-a-Judge for Hard Negatives Mining") turns a judge's P(Yes) into soft labels; how good
the judge must be before they pay is what the judge-quality study asks. To vary nothing but that quality, this
backend scores a pair from whether it truly matches (y = 1: the candidate is in the query's truth set,
:func:`uniembed.evaluate.judge_quality.read_truth`; 0 otherwise):

    s = sigmoid(y * d + e),   e ~ N(0, 1),   d = sqrt(2) * Phi^-1(AUC)

A match's logit is N(d, 1), a non-match's N(0, 1); their difference is N(d, 2), so a random match outranks a
random non-match with probability Phi(d / sqrt(2)) = AUC: the expected ROC-AUC is the requested one (0.5: pure
noise, 1.0: every match above every non-match, d taken as ``PERFECT_SEPARATION``). ``e`` is drawn from a
generator seeded by (seed, query id, candidate id), so a pair's score does not depend on its shard, its order or
the other pairs. The logits are reported as yes = y * d + e, no = 0, so s = e_yes / (e_yes + e_no) as for every
backend. It cannot generate (no listwise reranking).
"""
from __future__ import annotations

import hashlib
import math
from collections.abc import Collection, Mapping
from statistics import NormalDist
from typing import Sequence

import numpy as np

from .pairs import JudgePair
from .scoring import Generation, JudgeResult

#: d for AUC 1.0 (Phi^-1(1) is infinite): a match's logit 40 + e lies above every non-match's e in practice
#: (P(e' - e > 40) is about 1e-175), and sigmoid(40 + e) is 1.0 in float64 for e > -3.
PERFECT_SEPARATION = 40.0


def separation(auc: float) -> float:
    """d = sqrt(2) * Phi^-1(AUC): the gap between the logits of matches and non-matches that gives ``auc``."""
    if not 0.5 <= auc <= 1.0:
        raise ValueError(f"a simulated judge's ROC-AUC must be in [0.5, 1.0], got {auc}")
    return PERFECT_SEPARATION if auc == 1.0 else math.sqrt(2.0) * NormalDist().inv_cdf(auc)


def pair_noise(seed: int, query_id: str, candidate_id: str) -> float:
    """e ~ N(0, 1) of one pair, from a generator seeded by (seed, query id, candidate id) alone."""
    digest = hashlib.sha256(f"{seed}\0{query_id}\0{candidate_id}".encode()).digest()
    return float(np.random.default_rng(int.from_bytes(digest[:16], "little")).standard_normal())


class SimulatedJudge:
    """Scores pairs from ``truth`` (query id -> its genuine matches) with noise calibrated to ``auc``.

    A pair of a query the truth does not know fails (named), never a guess."""

    def __init__(self, truth: Mapping[str, Collection[str]], auc: float, seed: int = 0, truth_digest: str | None = None):
        self.truth, self.auc, self.seed = truth, float(auc), int(seed)
        self.d = separation(self.auc)
        self.model_id = f"simulated(auc={self.auc:g}, seed={self.seed})"
        self.settings = {"backend": "simulated", "auc": self.auc, "seed": self.seed, "truth": truth_digest}

    def score(self, pairs: Sequence[JudgePair]) -> list[JudgeResult]:
        results = []
        for pair in pairs:
            matches = self.truth.get(pair.query_id)
            if matches is None:
                results.append(JudgeResult.failed(f"query {pair.query_id} is not in the world's truth"))
                continue
            logit = (self.d if pair.candidate_id in matches else 0.0) + pair_noise(self.seed, pair.query_id,
                                                                                   pair.candidate_id)
            results.append(JudgeResult.ok(1.0 / (1.0 + math.exp(-logit)), logit, 0.0))
        return results

    def generate(self, prompts, max_new_tokens: int = 8) -> list[Generation]:
        return [Generation.failed("the simulated judge scores pairs; it does not generate") for _ in prompts]
