"""Schemas of the mining -> judge -> filter artifacts (docs/hard-negatives.md)."""
import pyarrow as pa

#: mine: per query, candidates of the global pool ranked by similarity, positives removed,
#: the top ``k`` (50) whose similarity is below delta (UniME-V2 eq. 1).
MINED = pa.schema([
    pa.field("query_id", pa.string(), nullable=False),
    pa.field("rank", pa.int32(), nullable=False),          # 1 = most similar
    pa.field("candidate_id", pa.string(), nullable=False),
    pa.field("similarity", pa.float32(), nullable=False),
])

#: judge: one row per (query, mined candidate) and per (query, positive); the score is
#: s = e_yes / (e_yes + e_no) from the judge's next-token logits (UniME-V2). A pair the judge
#: could not score has status "failed", a null score and the error: never a score of 0.
JUDGE_SCORES = pa.schema([
    pa.field("query_id", pa.string(), nullable=False),
    pa.field("candidate_id", pa.string(), nullable=False),
    pa.field("is_positive", pa.bool_(), nullable=False),
    pa.field("rank", pa.int32()),                           # mined rank; null for positives
    pa.field("score", pa.float64()),
    pa.field("yes_logit", pa.float32()),                    # logit or log-probability of "Yes"
    pa.field("no_logit", pa.float32()),
    pa.field("status", pa.string(), nullable=False),        # "ok" | "failed"
    pa.field("error", pa.string()),
    pa.field("judge_model", pa.string(), nullable=False),
    pa.field("prompt_hash", pa.string(), nullable=False),
])

#: filter: per query, the selected hard negatives with their judge scores (the trainer reads
#: query_id + negative_ids; UniME-V2's loss also uses the scores). ``positive_ids`` /
#: ``positive_scores``: each judged positive with its own score (null: failed), which the soft-label
#: trainer pairs with the positive it samples (UniME-V2's ``query_pos_scores``);
#: ``positive_score`` is the lowest usable one, what the filter's alpha = s(q, c+) - beta used.
HARD_NEGATIVES = pa.schema([
    pa.field("query_id", pa.string(), nullable=False),
    pa.field("negative_ids", pa.list_(pa.string()), nullable=False),
    pa.field("negative_scores", pa.list_(pa.float64()), nullable=False),
    pa.field("positive_score", pa.float64()),
    pa.field("positive_ids", pa.list_(pa.string()), nullable=False),
    pa.field("positive_scores", pa.list_(pa.float64()), nullable=False),
    pa.field("strategy", pa.string(), nullable=False),      # "unime_v2" | "umarvel"
    pa.field("params", pa.string(), nullable=False),        # JSON of the strategy's parameters
    pa.field("outcome", pa.string(), nullable=False),       # "selected" | "padded" | "fallback_random"
    pa.field("false_negatives_removed", pa.int32(), nullable=False),
])


def stored_negatives(strategy: str, params: dict) -> int | None:
    """How many negatives a HARD_NEGATIVES table of ``strategy`` stores per query at most (None: unknown):
    UniME-V2's filter keeps max(k, minimum) (the paper's minimum of ten), U-MARVEL's filter and the
    distillation teacher their k."""
    if "k" not in params:
        return None
    return max(int(params["k"]), int(params.get("minimum", 0))) if strategy == "unime_v2" else int(params["k"])


def score_bounds(strategy: str, params: dict) -> tuple[float, float]:
    """The range of a HARD_NEGATIVES table's stored scores: a judge's P(Yes) in [0, 1] (UniME-V2, or
    U-MARVEL on ``score_column: score``); a cosine or a fused recall + rerank score in [-1, 1]."""
    return (0.0, 1.0) if strategy == "unime_v2" or params.get("score_column") == "score" else (-1.0, 1.0)
