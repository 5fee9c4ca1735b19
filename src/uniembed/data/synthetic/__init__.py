"""The embedded default's data: a seeded world of coloured shapes written in real public formats.

:func:`generate_synthetic` writes M-BEIR (UniIR) jsonl, MMEB (VLM2Vec) Parquet, a SimCSE NLI CSV and
CC3M-style image-caption pairs, with genuine one-attribute hard negatives, genuine unlabelled
matches in every M-BEIR task shape and exact ground truth, so the curation stage reads it like real data.
"""
from .generate import generate_synthetic

__all__ = ["generate_synthetic"]
