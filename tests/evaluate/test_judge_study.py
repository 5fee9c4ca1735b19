"""The judge-quality study's table, its "beats beyond 2 sd" rule and its figure, against hand-made values."""
import json

import pytest

from uniembed.evaluate.figures import judge_study_figure
from uniembed.evaluate.judge_study import REAL, beats, first_wins, judge_study_table, read_quality

PNG = b"\x89PNG\r\n\x1a\n"
JUDGED = ["hard_negatives", "soft_labels"]
NAMES = {"0.5": {v: f"{v}@auc0.5" for v in JUDGED}, "0.9": {v: f"{v}@auc0.9" for v in JUDGED}, REAL: {v: v for v in JUDGED}}


def _values():
    local = lambda *xs: {"M-BEIR local": list(xs)}  # noqa: E731
    return {"no_hard_negatives": local(70.0, 70.5, 69.5),
            "hard_negatives@auc0.5": local(70.0, 70.2, 69.8), "soft_labels@auc0.5": local(70.1, 70.3, 69.9),
            "hard_negatives@auc0.9": local(70.0, 70.2, 69.8), "soft_labels@auc0.9": local(73.0, 73.2, 72.8),
            "hard_negatives": local(70.0, 70.1, 69.9), "soft_labels": local(71.0, 71.1, 70.9)}


def _quality(tmp_path):
    dirs = {}
    for level, auc, precision, fallback in (("0.5", 0.49, 0.05, 0.2), ("0.9", 0.9, 0.3, 0.01), (REAL, 0.68, None, 0.09)):
        dirs[level] = []
        for seed in range(2 if level != REAL else 1):
            d = tmp_path / f"{level}_{seed}"
            d.mkdir()
            quality = {"roc_auc": auc + 0.01 * seed, "removal_recall": 0.7}
            if precision is not None:
                quality["removal_precision"] = precision
            (d / "judge_quality.json").write_text(json.dumps(quality))
            (d / "filter_summary.json").write_text(json.dumps({"fallback_fraction": fallback}))
            dirs[level].append(str(d))
    return read_quality(dirs)


def test_read_quality_gathers_each_levels_seeds_and_leaves_out_what_a_file_lacks(tmp_path):
    quality = _quality(tmp_path)
    assert quality["0.9"]["roc_auc"] == pytest.approx([0.9, 0.91]) and quality["0.5"]["fallback_fraction"] == [0.2, 0.2]
    assert "removal_precision" not in quality[REAL] and quality[REAL]["roc_auc"] == [0.68]


@pytest.mark.parametrize("a, b, expected", [
    ([73.0, 73.2, 72.8], [70.0, 70.2, 69.8], True),     # gap 3.0 > 2 x sd 0.2
    ([70.5, 70.7, 70.3], [70.0, 70.2, 69.8], True),     # gap 0.5 > 0.4
    ([70.3, 70.5, 70.1], [70.0, 70.2, 69.8], False),    # gap 0.3 < 0.4
    ([70.5, 70.5, 70.5], [70.0, 70.4, 69.6], False),    # gap 0.5 < 2 x the larger sd 0.4
    ([75.0], [70.0], False),                            # one seed: no spread to read a difference against
])
def test_beats_needs_a_gap_above_twice_the_larger_sample_sd(a, b, expected):
    assert beats(a, b) is expected


def test_first_wins_names_the_lowest_simulated_auc_where_soft_scores_pay(tmp_path):
    wins = first_wins(_values(), _quality(tmp_path), NAMES, JUDGED, "no_hard_negatives")
    assert wins["M-BEIR local"] == {"hard negatives": "0.9", "baseline": "0.9"}   # not 0.5, and never the run's judge
    assert wins["MMEB overall"] == {"hard negatives": None, "baseline": None}


def test_the_table_has_a_row_per_judge_level_then_the_baseline(tmp_path):
    text = judge_study_table(_values(), _quality(tmp_path), NAMES, JUDGED, "no_hard_negatives")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split("|")[1].strip() for r in rows] == ["simulated 0.5", "simulated 0.9", "run's judge",
                                                        "no_hard_negatives (no judge)"]
    assert "| 0.91 ± 0.01 |" in rows[1]      # mean 0.905 ± sample sd 0.007 of the two seeds' measured AUCs
    assert "73.0 ± 0.2" in rows[1] and "71.0 ± 0.1" in rows[2] and "70.0 ± 0.5" in rows[3]


def test_the_figure_plots_each_judged_row_against_the_measured_auc(tmp_path):
    plotted = judge_study_figure(_values(), _quality(tmp_path), NAMES, JUDGED, "no_hard_negatives",
                                 tmp_path / "f.png", "study")
    x, mean, sd = plotted["soft_labels"]["M-BEIR local"][1]
    assert x == pytest.approx(0.905) and mean == pytest.approx(73.0) and sd == pytest.approx(0.2)
    assert [p[0] for p in plotted["hard_negatives"]["M-BEIR local"]] == pytest.approx([0.495, 0.905])
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG
