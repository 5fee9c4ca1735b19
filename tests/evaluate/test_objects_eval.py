"""ObjEmbed's evaluation (seed 002 §4): grounding, local and global retrieval scores against direct computations, and
the tables."""
import numpy as np
import pytest
import torch

from uniembed.evaluate.object_tables import objects_table, score_rows, training_effect, training_effect_table
from uniembed.evaluate.objects import (EncodedImages, EvalImage, Expression, LocalQuery, global_retrieval, grounding,
                                       local_retrieval_scores, recall, relevant_columns)


class FakeEmbedder:
    """Texts embed as fixed vectors; heads with a plain scale and bias."""

    def __init__(self, vectors: dict[str, list[float]]):
        self.vectors = vectors
        self.heads = torch.nn.Module()
        for prefix, scale, bias in (("object", 10.0, -1.0), ("image", 5.0, 0.0)):
            setattr(self.heads, f"{prefix}_log_scale", torch.nn.Parameter(torch.tensor(np.log(scale))))
            setattr(self.heads, f"{prefix}_bias", torch.nn.Parameter(torch.tensor(bias)))
        self.inputs = self

    def eval(self):
        return self

    def texts(self, texts, local):
        return list(texts)

    def forward_texts(self, texts):
        return torch.tensor([self.vectors[t] for t in texts], dtype=torch.float32)


IMAGES = [EvalImage("a", "a.png", np.array([[0, 0, 10, 10], [20, 20, 40, 40], [0, 0, 40, 40]], np.float32), "s a", "l a"),
          EvalImage("b", "b.png", np.array([[0, 0, 10, 10], [5, 5, 10, 10]], np.float32), "s b", "l b")]
ENCODED = EncodedImages([torch.tensor([[1.0, 0], [0, 1], [1, 1]]), torch.tensor([[1.0, 0.2], [0.2, 1]])],
                        [torch.tensor([0.0, 0.0, 5.0]), torch.tensor([0.0, 0.0])],
                        torch.tensor([[1.0, 0], [0, 1]]), torch.tensor([[0.0, 1], [1, 0]]))
VECTORS = {"x": [1.0, 0], "y": [0, 1.0], "s a": [1, 0], "s b": [0, 1], "l a": [1, 0], "l b": [0, 1]}


def test_grounding_takes_the_top_proposal_by_match_times_objectness():
    embedder = FakeEmbedder(VECTORS)
    found = grounding(embedder, IMAGES, ENCODED,
                      [Expression("e1", "a", "x", (0, 0, 10, 10)), Expression("e2", "a", "y", (20, 20, 40, 40)),
                       Expression("e3", "b", "y", (5, 5, 10, 10))])
    # e1: proposal 3 (cos 0.71 but objectness sigmoid(5)) beats proposal 1 (cos 1, objectness 0.5): IoU 100/1600 -> miss
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert sig(10 * np.sqrt(0.5) - 1) * sig(5) > sig(10 - 1) * 0.5
    assert [r["hit"] for r in found["rows"]] == [False, False, True]
    assert found["rows"][0]["top_iou"] == pytest.approx(100 / 1600)
    assert found["accuracy@0.5"] == pytest.approx(100 / 3)
    assert found["chance"] == pytest.approx(100 * np.mean([1 / 3, 1 / 3, 1 / 2]))


def test_local_retrieval_scores_an_image_by_its_best_proposal_without_objectness():
    embedder = FakeEmbedder(VECTORS)
    scores = local_retrieval_scores(embedder, ENCODED, [LocalQuery("q1", "x", "a"), LocalQuery("q2", "y", "b")])
    cos_b = 1 / np.sqrt(1.04)   # image b's best proposal for either query; image a has an exact match for both
    assert scores == pytest.approx(np.array([[9.0, 10 * cos_b - 1], [9.0, 10 * cos_b - 1]]), rel=1e-5)
    assert relevant_columns(IMAGES, [LocalQuery("q", "x", "b")]).tolist() == [1]
    with pytest.raises(KeyError, match="outside the gallery"):
        relevant_columns(IMAGES, [LocalQuery("q", "x", "c")])


def test_recall_counts_the_relevant_image_among_the_top_k_and_ties_against_it():
    scores = np.array([[0.9, 0.1, 0.5], [0.2, 0.3, 0.8], [0.5, 0.5, 0.1]])
    assert recall(scores, np.array([0, 0, 1]), ks=(1, 2)) == {"R@1": pytest.approx(100 / 3), "R@2": pytest.approx(200 / 3)}
    assert recall(scores, np.array([2, 2, 2]), ks=(1, 3)) == {"R@1": pytest.approx(100 / 3), "R@3": 100.0}
    assert recall(np.ones((4, 10)), np.arange(4), ks=(1, 5, 10)) == {"R@1": 0.0, "R@5": 0.0, "R@10": 100.0}


def test_global_retrieval_matches_each_caption_kind_with_its_own_token():
    out = global_retrieval(FakeEmbedder(VECTORS), IMAGES, ENCODED)
    assert out["short"]["R@1"] == 100.0       # coarse tokens align with the short captions
    assert out["long"]["R@1"] == 0.0          # detailed tokens are swapped here


def test_training_effect_against_the_seed_spread_and_the_whole_image_baseline():
    rows = (score_rows("before", "objembed", {"local": {"R@1": 1, "R@5": 5, "R@10": 9}, "grounding": {"accuracy@0.5": 8},
                                              "global_short": {"R@1": 2}, "global_long": {"R@1": 3}})
            + score_rows("s0", "objembed", {"local": {"R@1": 7, "R@5": 38, "R@10": 78}, "grounding": {"accuracy@0.5": 70},
                                            "global_short": {"R@1": 4}, "global_long": {"R@1": 5}})
            + score_rows("s1", "objembed", {"local": {"R@1": 11, "R@5": 41, "R@10": 74}, "grounding": {"accuracy@0.5": 66},
                                            "global_short": {"R@1": 6}, "global_long": {"R@1": 5}})
            + score_rows("hn", "whole-image", {"local": {"R@1": 1, "R@5": 7, "R@10": 16}}))
    effect = {(e["task"], e["metric"]): e for e in training_effect(rows, "before", ["s0", "s1"], ["hn"])}
    local = effect[("local", "R@1")]
    assert local["after_mean"] == 9 and local["after_sd"] == pytest.approx(np.std([7, 11], ddof=1))
    assert local["gain"] == 8 and local["gain_in_sd"] == pytest.approx(8 / np.std([7, 11], ddof=1))
    assert local["best_whole_image"] == 1 and local["over_whole_image"] == 8
    assert effect[("grounding", "accuracy@0.5")]["best_whole_image"] is None
    assert effect[("global_long", "R@1")]["gain_in_sd"] is None          # equal seeds: no spread to measure in
    table = objects_table(rows)
    assert table.index("| hn | whole-image |") < table.index("| before | objembed |")
    assert "| hn | whole-image | 1.0 | 7.0 | 16.0 | – | – | – |" in table
    assert "–" in training_effect_table(list(effect.values()), "before")
    with pytest.raises(ValueError, match="needs"):
        training_effect(rows, "before", ["s0", "missing"], ["hn"])
