"""The report's figures: each is a PNG and returns the numbers it drew, checked against direct computations."""
from __future__ import annotations

import numpy as np
import pytest

from uniembed.evaluate.figures import ablation_figure, judge_scores_figure, seed_mean_curves_figure, training_curves_figure

PNG = b"\x89PNG\r\n\x1a\n"


def test_training_curves_plot_every_stage_that_logged_a_loss(tmp_path):
    histories = {"pretrain_nli": [{"step": 1, "loss": 3.0}, {"step": 2, "loss": 2.5}],
                 "reranker_pointwise": [{"step": 1, "loss": 7.5, "answers": 7.5}],
                 "empty": [], "no_loss": [{"step": 1, "temperature": 0.05}]}
    plotted = training_curves_figure(histories, tmp_path / "curves.png")
    assert plotted == ["pretrain_nli", "reranker_pointwise"]
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG


def test_judge_score_figure_splits_by_truth(tmp_path):
    scores = np.array([0.9, 0.8, 0.2, 0.4, 0.1])
    matches = np.array([True, True, False, False, False])
    assert judge_scores_figure(scores, matches, 1.0, tmp_path / "j.png") == {"true matches": 2, "non-matches": 3}
    assert (tmp_path / "j.png").read_bytes()[:8] == PNG
    assert judge_scores_figure(scores[:0], matches[:0], None, tmp_path / "e.png") == {"true matches": 0, "non-matches": 0}


def test_ablation_figure_draws_the_seed_mean_and_sample_sd(tmp_path):
    values = {"a": {"M-BEIR local": [50.0, 52.0, 57.0], "MMEB overall": [10.0, 12.0, 11.0]},
              "b": {"M-BEIR local": [40.0, 41.0, 45.0], "MMEB overall": [9.0, 9.0, 9.0]}}
    plotted = ablation_figure(values, {"t1": ["a", "b"], "t2": ["b"]}, tmp_path / "f.png", "study")
    for variant, metrics in values.items():
        for metric, seeds in metrics.items():
            mean, sd = plotted[variant][metric]
            assert mean == pytest.approx(sum(seeds) / 3)
            assert sd == pytest.approx((sum((x - mean) ** 2 for x in seeds) / 2) ** 0.5)  # ddof = 1
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG


def test_seed_mean_curves_average_each_lines_seeds_step_by_step(tmp_path):
    panels = {"soft_labels": {"ROC-AUC 1": [[{"step": 1, "loss": 10.0}, {"step": 2, "loss": 8.0}],
                                            [{"step": 1, "loss": 12.0}, {"step": 2, "loss": 6.0}]],
                              "run's judge": [[{"step": 1, "loss": 5.0}]]},
              "no_hard_negatives": {"no_hard_negatives": [[{"step": 1, "temperature": 0.02}]]}}
    drawn = seed_mean_curves_figure(panels, tmp_path / "c.png", "study")
    assert drawn == {"soft_labels": {"ROC-AUC 1": [(1, 11.0), (2, 7.0)], "run's judge": [(1, 5.0)]}, "no_hard_negatives": {}}
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG
