"""Shared setup of the benchmarks: the embedded default's tiny model and curated M-BEIR world."""
from __future__ import annotations

from pathlib import Path

from uniembed.data.curate import finalize
from uniembed.data.readers import read_mbeir
from uniembed.data.synthetic import generate_synthetic
from uniembed.data.synthetic.world import corpus
from uniembed.model.tiny import build_tiny_model


def build_embedded_world(directory: Path, split: str) -> tuple[Path, Path]:
    """Build the tiny Qwen2-VL and curate one split of the default synthetic M-BEIR source.

    Returns ``(model_dir, curated_dir)``; everything lives under ``directory``.
    """
    model = build_tiny_model(directory / "model", corpus(0), family_name="qwen2_vl")
    generate_synthetic(directory / "data", seed=0)
    finalize(read_mbeir("mbeir", directory / "data" / "mbeir", splits=[split]), progress=False).write(directory / "curated")
    return model, directory / "curated"
