"""Which curated sources the evaluate stage scores, and on which split (one rule for the workflow and the stage)."""
from __future__ import annotations

from .zeroshot import ZEROSHOT_FORMATS

BENCHMARK_FORMATS = ("mbeir", "mmeb")


def evaluation_split(spec, evaluate) -> str | None:
    """The split of source ``spec`` (a ``data.sources`` entry) that ``evaluate`` (``recipe.evaluate``) scores:
    ``mbeir_split`` (M-BEIR), ``mmeb_split`` (MMEB), ``"all"`` for a zero-shot source (every query it holds); None
    when it is not evaluated: another format, or a source whose declared ``splits`` lack that split (a training-only
    source such as the identity split)."""
    if spec["format"] in ZEROSHOT_FORMATS:
        return "all"
    if spec["format"] not in BENCHMARK_FORMATS:
        return None
    split = evaluate["mbeir_split"] if spec["format"] == "mbeir" else evaluate["mmeb_split"]
    declared = spec.get("splits")
    return split if declared is None or split in declared else None
