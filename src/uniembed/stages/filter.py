"""Stage ``filter``: select hard negatives from the mined and judged candidates.

    python -m uniembed.stages.filter [--config-dir config] stage.curated_dir=DIR stage.out_dir=DIR

``recipe.filter.strategy``: ``unime_v2`` (alpha = s(q, c+) - beta, cyclical sampling, padding,
random fallback) or ``umarvel`` (threshold + top k). Writes ``hard_negatives.parquet`` (schema
HARD_NEGATIVES, read by the trainer) and ``filter_summary.json``. Given ``stage.truth`` (the
synthetic world's ``truth/mbeir_truth.parquet``), also ``judge_quality.{json,md}``: how well the judge separates true
matches from non-matches (ROC-AUC), how many judged queries had a genuine match among their mined candidates, and the
precision and recall of the removal of "false negatives".

A score table with more failed pairs than ``recipe.judge.max_failed_fraction`` is refused (exit 1):
a dead judge must not turn into empty negatives for every query. A recipe without a ``judge``
section (U-MARVEL on similarity) reads no judge scores.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyarrow.compute as pc
from omegaconf import OmegaConf

from ..artifacts import atomic_path, read_parquet, write_json, write_parquet
from ..config import stage_config
from ..data.schemas import QUERIES
from ..evaluate.judge_quality import judge_quality, judge_quality_markdown, read_truth
from ..judge.failures import DEFAULT_MAX_FAILED_FRACTION, JudgeFailureError, check_failures, check_limit
from ..mine.schemas import HARD_NEGATIVES, JUDGE_SCORES, MINED
from ..negatives.select import removed_false_negatives, select_hard_negatives

log = logging.getLogger("uniembed.filter")


def read_judged(cfg, out: Path):
    """The judge scores (None when the recipe has no judge), refused above ``recipe.judge.max_failed_fraction``."""
    if OmegaConf.select(cfg, "recipe.judge") is None:  # U-MARVEL on similarity: the DAG plans mine -> filter
        return None, None
    limit = check_limit(OmegaConf.select(cfg, "recipe.judge.max_failed_fraction", default=DEFAULT_MAX_FAILED_FRACTION))
    path = out / "judge_scores.parquet"
    judged = read_parquet(path, JUDGE_SCORES)
    try:
        return judged, check_failures(judged, limit, str(path),
                                      "Rerun the judge (it retries the failed pairs) or fix the judge backend.")
    except JudgeFailureError as error:
        log.error("%s", error)
        raise SystemExit(f"filter refused the judge scores: {error}") from error


def run(cfg) -> dict:
    s, f = cfg.stage, cfg.recipe.filter
    if not s.out_dir or not s.curated_dir:
        raise SystemExit("stage.out_dir and stage.curated_dir are required")
    out = Path(s.out_dir)
    judged, failures = read_judged(cfg, out)
    mined = read_parquet(out / "mined.parquet", MINED)
    if judged is not None:
        mined = mined.filter(pc.is_in(mined["query_id"], value_set=pc.unique(judged["query_id"])))
    queries = read_parquet(Path(s.curated_dir) / cfg.recipe.mine.source / "queries.parquet", QUERIES)
    task_of = dict(zip(queries["query_id"].to_pylist(), queries["task_id"].to_pylist()))
    params = OmegaConf.to_container(f.params)
    table, summary = select_hard_negatives(mined, judged, f.strategy, params, task_of=task_of)
    if failures is not None:
        summary["judge_failures"] = failures
    write_parquet(table, out / "hard_negatives.parquet", HARD_NEGATIVES)
    write_json(summary, out / "filter_summary.json")
    if s.truth and judged is not None:  # the synthetic world knows every genuine match
        report = judge_quality(judged, read_truth(s.truth), removed_false_negatives(mined, judged, f.strategy, params))
        write_json(report, out / "judge_quality.json")
        with atomic_path(out / "judge_quality.md") as tmp:
            tmp.write_text(judge_quality_markdown(report, f"Judge quality ({judged['judge_model'][0].as_py()})"))
    log.info("%s: %s", f.strategy, {k: v for k, v in summary.items() if not isinstance(v, dict)})
    return summary


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
