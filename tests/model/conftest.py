"""Session fixtures: a caption corpus and the tiny models, built once per test session."""
from __future__ import annotations

import itertools

import pytest

from uniembed.model.families import families
from uniembed.model.tiny import build_tiny_model

VARIANTS = tuple(families())   # every registered family: the matrix each test of tests/model runs over


def caption_corpus() -> list[str]:
    """A few hundred short captions like "a large red circle on the left"."""
    sizes = ("large", "small", "tiny", "huge")
    colours = ("red", "green", "blue", "yellow", "purple")
    shapes = ("circle", "square", "triangle", "star")
    places = ("on the left", "on the right", "at the top", "at the bottom", "in the middle")
    return [
        f"a {size} {colour} {shape} {place}"
        for size, colour, shape, place in itertools.product(sizes, colours, shapes, places)
    ]


@pytest.fixture(scope="session")
def corpus() -> list[str]:
    return caption_corpus()


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, corpus) -> dict:
    """Every family, built with seed 0 under one session directory: ``{variant: path}``."""
    root = tmp_path_factory.mktemp("tiny_models")
    return {variant: build_tiny_model(root / variant, corpus, family_name=variant) for variant in VARIANTS}


@pytest.fixture(scope="session", params=VARIANTS)
def tiny_model_dir(request, tiny_models):
    return tiny_models[request.param]
