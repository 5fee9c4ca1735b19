"""Stage ``filter``: select hard negatives from the mined (and judged) candidates.

    python -m uniembed.stages.filter --stage name unime_v2 --stage curated_dir DIR \
        --stage mining_dir results/<run>/mining --stage out_dir results/<run>/mining/filters/unime_v2

``recipe.filters.<name>`` names a strategy: ``unime_v2`` (alpha = s(q, c+) - beta, cyclical
sampling, padding, random fallback; reads the judge scores) or ``umarvel`` (threshold + top k on
the mined similarity, or on the judge score). Reads ``mined.parquet`` (or ``stage.mined``) and
``judge_scores.parquet`` from ``mining_dir``; writes ``hard_negatives.parquet`` (schema HARD_NEGATIVES, read by the
trainer) and ``filter_summary.json`` into ``out_dir``. On the synthetic world the
``judge_quality`` stage reports how good the judge and this filter's removals are.

A score table with more failed pairs than ``recipe.judge.max_failed_fraction`` is refused (exit 1):
a dead judge must not turn into empty negatives for every query. A filter that does not use judge
scores (U-MARVEL on similarity) reads none.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyarrow.compute as pc
from omegaconf import OmegaConf

from ..artifacts import read_parquet, write_json, write_parquet
from ..config import stage_config
from ..data.schemas import QUERIES
from ..judge.failures import DEFAULT_MAX_FAILED_FRACTION, JudgeFailureError, check_failures, check_limit
from ..mine.schemas import HARD_NEGATIVES, JUDGE_SCORES, MINED
from ..negatives.select import select_hard_negatives
from ..workflow_checks import needs_judge_scores
from .common import require

log = logging.getLogger("uniembed.filter")


def read_judged(cfg, mining: Path):
    """The judge scores, refused above ``recipe.judge.max_failed_fraction``."""
    limit = check_limit(OmegaConf.select(cfg, "recipe.judge.max_failed_fraction", default=DEFAULT_MAX_FAILED_FRACTION))
    path = mining / "judge_scores.parquet"
    judged = read_parquet(path, JUDGE_SCORES)
    try:
        return judged, check_failures(judged, limit, str(path),
                                      "Rerun the judge (it retries the failed pairs) or fix the judge backend.")
    except JudgeFailureError as error:
        log.error("%s", error)
        raise SystemExit(f"filter refused the judge scores: {error}") from error


def run(cfg) -> dict:
    s = cfg.stage
    require(s, "name", "curated_dir", "mining_dir", "out_dir")
    filters = cfg.recipe.get("filters") or {}
    if s.name not in filters:
        raise SystemExit(f"unknown filter {s.name!r}; recipe {cfg.recipe.name!r} defines {list(filters)}")
    f, out, mining = filters[s.name], Path(s.out_dir), Path(s.mining_dir)
    judged, failures = read_judged(cfg, mining) if needs_judge_scores(f) else (None, None)
    mined = read_parquet(Path(s.mined) if s.get("mined") else mining / "mined.parquet", MINED)
    if judged is not None:
        mined = mined.filter(pc.is_in(mined["query_id"], value_set=pc.unique(judged["query_id"])))
    queries = read_parquet(Path(s.curated_dir) / cfg.recipe.mine.source / "queries.parquet", QUERIES)
    task_of = dict(zip(queries["query_id"].to_pylist(), queries["task_id"].to_pylist()))
    params = OmegaConf.to_container(f.params)
    try:
        table, summary = select_hard_negatives(mined, judged, f.strategy, params, task_of=task_of)
    except ValueError as error:  # a bad judge row or table: name the files it came from
        raise SystemExit(f"filter {s.name}: {mining / 'judge_scores.parquet'} / {mining / 'mined.parquet'}: {error}") from None
    if failures is not None:
        summary["judge_failures"] = failures
    write_parquet(table, out / "hard_negatives.parquet", HARD_NEGATIVES)
    write_json(summary, out / "filter_summary.json")
    log.info("%s (%s): %s", s.name, f.strategy, {k: v for k, v in summary.items() if not isinstance(v, dict)})
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
