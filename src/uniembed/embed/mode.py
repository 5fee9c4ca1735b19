"""How an embedding is extracted (:class:`EmbeddingMode`, ``recipe.embedding``), without torch: the workflow checks
the config when it is parsed (the papers' two modes: :mod:`uniembed.embed.embedder`)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Optional

from ..model.prompts import PromptStyle
from ..ranges import Range

POOLINGS, ATTENTIONS = ("mean", "last"), ("bidirectional", "causal")


@dataclass(frozen=True)
class EmbeddingMode:
    pooling: str = "mean"  # mean (U-MARVEL, instruction masked) | last (VLM2Vec, UniME-V2)
    attention: str = "bidirectional"  # bidirectional (U-MARVEL) | causal
    system: str = PromptStyle.system  # the chat template's system turn
    compression: str | None = None  # a prompt appended before the last token (E5-V style); null: none
    normalize: bool = True  # L2-normalise (cosine scores)
    image_size: Optional[Annotated[int, Range(ge=1)]] = None   # pixels per side; None: the processor's own sizing

    def __post_init__(self):
        if self.pooling not in POOLINGS or self.attention not in ATTENTIONS:
            raise ValueError(f"pooling must be one of {POOLINGS} and attention one of {ATTENTIONS}; got {self}")

    def as_dict(self) -> dict:
        return asdict(self)
