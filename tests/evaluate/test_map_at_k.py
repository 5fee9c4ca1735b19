"""mAP@k as CIRCO scores it (Baldrati et al. 2023): ``map_at_k(..., denominator="min(R,k)")`` against a direct
transcription of miccunifi/CIRCO ``src/evaluation.py::compute_metrics`` (cumulative hits times the hit labels over
the rank, summed over the first k, divided by min(|gt_img_ids|, k)) on random queries, and hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from uniembed.evaluate.metrics import map_at_k

CIRCO_RANKS = (5, 10, 25, 50)


def circo_ap_at_k(predictions: list[int], gt_img_ids: list[int], k: int) -> float:
    """One query's AP@k computed the way CIRCO's evaluation script does, with arrays over the whole prediction list."""
    predictions = np.array(predictions, dtype=int)
    labels = np.isin(predictions, gt_img_ids)
    precisions = np.cumsum(labels, axis=0) * labels / np.arange(1, labels.shape[0] + 1)
    return float(np.sum(precisions[:k]) / min(len(gt_img_ids), k))


@pytest.mark.parametrize("seed", range(5))
def test_map_at_k_min_r_k_equals_circos_evaluation_on_random_queries(seed):
    rng = np.random.default_rng(seed)
    gallery = rng.choice(10**6, size=300, replace=False)
    ranked, positives = [], []
    for _ in range(40):
        predictions = rng.permutation(gallery)[:50]            # a CIRCO submission: 50 image ids per query
        n_gt = int(rng.integers(1, 24))                       # CIRCO has 1 to 23 ground truths
        near = rng.choice(predictions[:30], size=min(n_gt, int(rng.integers(0, n_gt + 1))), replace=False)
        gt = list(dict.fromkeys([*near.tolist(), *rng.choice(gallery, size=n_gt, replace=False).tolist()]))[:n_gt]
        ranked.append([str(p) for p in predictions])
        positives.append({str(g) for g in gt})
        for k in CIRCO_RANKS:
            expected = circo_ap_at_k(predictions.tolist(), gt, k)
            assert map_at_k(ranked[-1:], positives[-1:], k, denominator="min(R,k)")[0] == pytest.approx(expected)
    for k in CIRCO_RANKS:
        values = map_at_k(ranked, positives, k, denominator="min(R,k)")
        assert values.shape == (40,) and ((0 <= values) & (values <= 1)).all()
    assert any(len(p) > 5 for p in positives) and any(len(p) < 5 for p in positives)   # both sides of min(R, k)


def test_map_at_k_min_r_k_hand_computed():
    ranked = [["a", "x", "b", "y", "c"], ["a", "b"], ["x", "y"]]
    positives = [{"a", "b", "c", "d"}, {"a", "b", "c", "d", "e", "f"}, {"a"}]
    # query 0, k=5: hits at ranks 1, 3, 5 -> (1/1 + 2/3 + 3/5) / min(4, 5)
    # query 1, k=2: both of the top 2 are positives -> (1 + 1) / min(6, 2) = 1, although R = 6
    # query 2: no hit -> 0
    assert map_at_k(ranked[:1], positives[:1], 5, denominator="min(R,k)")[0] == pytest.approx((1 + 2 / 3 + 3 / 5) / 4)
    assert map_at_k(ranked[1:2], positives[1:2], 2, denominator="min(R,k)")[0] == pytest.approx(1.0)
    assert map_at_k(ranked[1:2], positives[1:2], 2)[0] == pytest.approx(2 / 6)           # the "R" denominator
    assert map_at_k(ranked[2:], positives[2:], 2, denominator="min(R,k)")[0] == 0.0
