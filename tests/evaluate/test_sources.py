"""Which sources the evaluate stage scores: M-BEIR and MMEB on the recipe's splits, a zero-shot source whole, and
never a source whose declared splits lack the evaluated one (a training-only source: the identity split)."""
import pytest

from uniembed.evaluate.sources import evaluation_split

EVALUATE = {"mbeir_split": "test", "mmeb_split": "eval"}


@pytest.mark.parametrize("spec, split", [
    ({"format": "mbeir", "splits": ["train", "val", "test"]}, "test"),
    ({"format": "mbeir"}, "test"),                          # no declared splits: the reader's default holds it
    ({"format": "mbeir", "splits": ["train"]}, None),        # training only
    ({"format": "mmeb", "splits": ["train", "eval"]}, "eval"),
    ({"format": "mmeb", "splits": ["train"]}, None),
    ({"format": "karpathy"}, "all"),
    ({"format": "nli_csv"}, None),
])
def test_evaluation_split(spec, split):
    assert evaluation_split(spec, EVALUATE) == split


def test_the_embedded_default_evaluates_every_benchmark_source_but_the_identity_split():
    from uniembed.config import compose_config

    cfg = compose_config([])
    evaluated = {name for name, spec in cfg.data.sources.items() if evaluation_split(spec, cfg.recipe.evaluate)}
    assert "identity" in cfg.data.sources and evaluated == {"mbeir", "mmeb", "shapes2", "shapes2_crepe"}
