"""Shapes text triplets and image-caption pairs for the two pre-training stages.

``<root>/nli/nli_for_simcse.csv`` is the SimCSE supervised NLI file: a header
``sent0,sent1,hard_neg`` (anchor, entailment, contradiction), standard CSV quoting::

    sent0,sent1,hard_neg
    a large red circle on the left,"there is a red circle on the left, and it is large","a circle that is large and blue, on the left"

The contradiction differs from the anchor in exactly one attribute.

``<root>/captions/captions.tsv`` holds CC3M-style image-caption pairs: a header ``image<TAB>caption``,
the image path relative to ``captions/`` and the pictures under ``captions/images/``::

    image	caption
    images/00000.png	a small green cross in the center
"""
from __future__ import annotations

import csv
import io
from pathlib import Path

from ...artifacts import atomic_path
from .world import (
    ALL_OBJECTS, PARAPHRASES, ImageFolder, ShapeObject, caption, one_attribute_variants, paraphrase,
    render, seeded_rng, write_lines,
)

PARAPHRASED_CAPTION_RATE = 0.25  # share of image captions written as a paraphrase


def write_nli(root: str | Path, *, seed: int, rows: int) -> dict[str, int]:
    """Write ``rows`` (caption, paraphrase, one-attribute contradiction) triplets; return row counts."""
    rng = seeded_rng(seed, "nli")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["sent0", "sent1", "hard_neg"])
    for i in rng.choice(len(ALL_OBJECTS), size=rows, replace=rows > len(ALL_OBJECTS)):
        obj = ALL_OBJECTS[i]
        variants = one_attribute_variants(obj.attributes())
        other = ShapeObject(**variants[rng.integers(len(variants))])
        sent1, hard_neg = (paraphrase(o, int(rng.integers(len(PARAPHRASES)))) for o in (obj, other))
        writer.writerow([caption(obj), sent1, hard_neg])
    path = Path(root) / "nli" / "nli_for_simcse.csv"
    with atomic_path(path) as tmp:
        tmp.write_text(buffer.getvalue(), encoding="utf-8")
    return {"nli/nli_for_simcse.csv": rows}


def write_captions(root: str | Path, *, seed: int, pairs: int) -> dict[str, int]:
    """Write ``pairs`` rendered pictures and their captions; return row and image counts."""
    rng = seeded_rng(seed, "captions")
    base = Path(root) / "captions"
    folder = ImageFolder(base, "images")
    lines = ["image\tcaption"]
    for i in rng.choice(len(ALL_OBJECTS), size=pairs, replace=pairs > len(ALL_OBJECTS)):
        obj = ALL_OBJECTS[i]
        text = caption(obj)
        if rng.random() < PARAPHRASED_CAPTION_RATE:
            text = paraphrase(obj, int(rng.integers(len(PARAPHRASES))))
        lines.append(f"{folder.add(render(obj, rng))}\t{text}")
    write_lines(base / "captions.tsv", lines)
    return {"captions/captions.tsv": pairs, "captions/images/": folder.count}
