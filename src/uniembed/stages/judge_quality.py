"""Stage ``judge_quality``: how good the judge and a filter's removals are, on the synthetic world.

    python -m uniembed.stages.judge_quality --stage name unime_v2 --stage mining_dir results/<run>/mining \\
        --stage truth resources/synthetic/truth/mbeir_truth.parquet --stage out_dir results/<run>/mining/filters/unime_v2

The generated world knows every genuine match of every query (its truth table, read here and
nowhere else). Writes ``judge_quality.{json,md}``: ROC-AUC of the judge scores against the truth,
mean scores of matches and non-matches, the judged queries whose mined candidates hold a genuine
match, and the precision and recall of the "false negatives" filter ``name`` removed; and
``judge_scores.png``, the score distributions of true matches and non-matches.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path

import pyarrow.compute as pc
from omegaconf import OmegaConf

from ..artifacts import atomic_path, read_parquet, write_json
from ..config import stage_config
from ..evaluate.figures import judge_scores_figure
from ..evaluate.judge_quality import judge_quality, judge_quality_markdown, read_truth, score_against_truth
from ..mine.schemas import JUDGE_SCORES, MINED
from ..negatives.select import removed_false_negatives
from .common import require

log = logging.getLogger("uniembed.judge_quality")


def run(cfg) -> dict:
    s = cfg.stage
    require(s, "name", "mining_dir", "truth", "out_dir")
    f = cfg.recipe.filters[s.name]
    mining, out = Path(s.mining_dir), Path(s.out_dir)
    judged = read_parquet(mining / "judge_scores.parquet", JUDGE_SCORES)
    mined = read_parquet(Path(s.mined) if s.get("mined") else mining / "mined.parquet", MINED)
    mined = mined.filter(pc.is_in(mined["query_id"], value_set=pc.unique(judged["query_id"])))
    removed = removed_false_negatives(mined, judged, f.strategy, OmegaConf.to_container(f.params))
    truth = read_truth(s.truth)
    scored = score_against_truth(judged, truth)
    report = judge_quality(judged, truth, removed, scored)
    if not report["queries"]:
        raise SystemExit(f"{s.truth}: none of the {report['queries_without_truth']} judged queries of "
                         f"{mining / 'judge_scores.parquet'} has a truth row: the truth covers the generated world's "
                         f"M-BEIR queries (recipe.mine.source {cfg.recipe.mine.source!r})")
    judge_scores_figure(scored.scores, scored.matches, report["roc_auc"], out / "judge_scores.png")
    write_json(report, out / "judge_quality.json")
    with atomic_path(out / "judge_quality.md") as tmp:
        tmp.write_text(judge_quality_markdown(report, f"Judge quality ({judged['judge_model'][0].as_py()}), filter {s.name}"))
    log.info("judge quality: ROC-AUC %.4f, removal precision %s, recall %s", report["roc_auc"],
             report.get("removal_precision"), report.get("removal_recall"))
    return report


def main(argv=None) -> None:
    run(stage_config(argv, __doc__))


if __name__ == "__main__":
    main(sys.argv[1:])
