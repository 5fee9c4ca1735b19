"""What one sequence costs a model: parameters by part and floating-point operations by formula.

The model is instantiated on the meta device from its config (the checkpoint's ``config.json`` when it is on
disk, else the model section's published ``architecture``), so a 7B plan reads no weights. FLOPs follow the
usual dense-transformer count (Kaplan et al. 2020, eq. 2.2; Chinchilla App. F): a forward pass costs 2 N per
token for the N weights a token passes through, plus the attention products, 4 T d per token and layer for a
sequence of T tokens (QK^T and AV over the full T x T, as SDPA computes them). ``tests/plan`` checks both
against ``torch.utils.flop_counter`` on the tiny models.

Training with LoRA on the decoder and the vision tower frozen (U-MARVEL §4.1, UniME-V2 §4.1): the tower runs
forward only (nothing before it needs a gradient); the decoder's backward computes activation gradients
(2x its forward) but no weight gradients for its frozen weights (the LoRA factors' are negligible);
activation checkpointing adds one more decoder forward; gradient caching (GradCache) adds a first forward
of tower and decoder without gradients.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..model.families import family


@dataclass(frozen=True)
class ModelCost:
    """Sizes of one model that its FLOPs and memory follow from."""

    name: str
    family: str
    config: object = None                 # the transformers config (for the family's image token count)
    vision_parameters: int = 0            # tower + merger / projector (frozen)
    merger_parameters: int = 0            # the part of them that runs per decoder image token (Family.merger_modules)
    decoder_parameters: int = 0           # the language model's weights a token passes through (no embeddings)
    embedding_parameters: int = 0
    head_parameters: int = 0              # the LM head (0 when tied to the embeddings)
    layers: int = 0
    attention_width: int = 0              # heads x head size of the decoder's queries
    vision_layers: int = 0
    vision_attention_width: int = 0
    hidden_size: int = 0
    intermediate_size: int = 0
    kv_width: int = 0                     # kv heads x head size (the KV cache per token and layer)
    pixels: tuple[int, int] | None = None  # the image processor's (min, max) pixels, when the checkpoint has one

    @property
    def parameters(self) -> int:
        return self.vision_parameters + self.decoder_parameters + self.embedding_parameters + self.head_parameters

    def lora_parameters(self, rank: int) -> int:
        """LoRA on q, k, v, o, gate, up and down of every decoder layer: rank x (in + out) each."""
        h, inter, q, kv = self.hidden_size, self.intermediate_size, self.attention_width, self.kv_width
        return rank * ((h + q) + 2 * (h + kv) + (q + h) + 2 * (h + inter) + (inter + h)) * self.layers

    def image_tokens(self, side: int) -> tuple[int, int]:
        """(tower tokens, decoder tokens) of one side x side image."""
        return family(self.family).image_tokens(self.config, side, self.pixels)

    def vision_flops(self, images: float, side: int) -> float:
        """Forward FLOPs of the tower over ``images`` images (each its own attention block)."""
        tower, merged = self.image_tokens(side)
        per_tower_token = self.vision_parameters - self.merger_parameters
        return images * (2 * per_tower_token * tower + 2 * self.merger_parameters * merged
                         + 4 * self.vision_layers * tower ** 2 * self.vision_attention_width)

    def decoder_flops(self, tokens: float, sequence: float) -> float:
        """Forward FLOPs of the decoder over ``tokens`` tokens in sequences of ``sequence`` tokens."""
        return 2 * self.decoder_parameters * tokens + 4 * self.layers * tokens * sequence * self.attention_width

    def forward_flops(self, text_tokens: float, images: float, side: int, head_tokens: float = 0,
                      padded_to: float = 0.0) -> float:
        """One sequence's forward: ``text_tokens`` plus ``images`` images of ``side`` px, and the LM head over
        ``head_tokens`` positions (the judge reads one); ``padded_to`` as in :meth:`training_flops`."""
        sequence = max(text_tokens + images * self.image_tokens(side)[1], padded_to)
        return (self.vision_flops(images, side) + self.decoder_flops(sequence, sequence)
                + 2 * max(self.head_parameters, self.embedding_parameters) * head_tokens)

    def decode_flops(self, text_tokens: float, images: float, side: int, new_tokens: float) -> float:
        """Greedy generation of ``new_tokens`` after a prompt (the KV cache holds the prompt): each new token one
        decoder position attending to the sequence so far, and the LM head."""
        sequence = text_tokens + images * self.image_tokens(side)[1] + new_tokens / 2
        return new_tokens * (self.decoder_flops(1, sequence) + 2 * max(self.head_parameters, self.embedding_parameters))

    def training_flops(self, text_tokens: float, images: float, side: int, checkpointing: bool,
                       gradient_cache: bool, generative: bool = False, padded_to: float = 0.0) -> float:
        """One sequence's training step with LoRA on the decoder and the tower frozen (module docstring); a
        ``generative`` one (a reranker's answer tokens) also runs the frozen LM head over every position, forward
        and activation gradients. ``padded_to``: the decoder length its batch pads it to (a training batch pads
        every sequence to its longest, and the decoder and the head run over the padding; the tower does not)."""
        sequence = max(text_tokens + images * self.image_tokens(side)[1], padded_to)
        vision, decoder = self.vision_flops(images, side), self.decoder_flops(sequence, sequence)
        passes = 1 + 2 + (1 if checkpointing else 0)          # forward, activation gradients, recompute
        head = 2 * 2 * max(self.head_parameters, self.embedding_parameters) * sequence if generative else 0.0
        return (2 if gradient_cache else 1) * vision + (passes + (1 if gradient_cache else 0)) * decoder + head


def _config(section) -> object:
    """The model's transformers config: its checkpoint's config.json, else the published architecture."""
    chosen = family(section["family"])
    path = Path(str(section.get("path") or ""))
    if (path / "config.json").is_file():
        return chosen.config_class.from_dict(json.loads((path / "config.json").read_text()))
    if section.get("architecture"):
        return chosen.config_class(**section["architecture"])
    raise SystemExit(f"model {section['name']!r}: no config.json at {path} and no published `architecture` in its "
                     f"section; build it first (snakemake build_model) or point `path` at the checkpoint")


def _pixels(section) -> tuple[int, int] | None:
    path = Path(str(section.get("path") or "")) / "preprocessor_config.json"
    if not path.is_file():
        return None
    image = json.loads(path.read_text())
    size = image.get("size") or {}
    low, high = size.get("shortest_edge", image.get("min_pixels")), size.get("longest_edge", image.get("max_pixels"))
    return (int(low), int(high)) if low and high else None


def model_cost(section) -> ModelCost:
    """The :class:`ModelCost` of a model section (``model`` or ``judge_model``)."""
    chosen = family(section["family"])
    config = _config(section)
    with torch.device("meta"):
        model = chosen.model_class(config)
    sizes = {name: p.numel() for name, p in model.named_parameters()}
    frozen = set(chosen.frozen_parameters(model))
    embedding = model.get_input_embeddings().weight
    head = model.get_output_embeddings()
    tied = head is None or head.weight is embedding
    vision = sum(sizes[name] for name in frozen)
    merger = sum(sizes[name] for name in frozen if any(f".{part}." in f".{name}" for part in chosen.merger_modules))
    head_count = 0 if tied else head.weight.numel()
    text = config.get_text_config()
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    tower = config.vision_config
    vision_width = getattr(tower, "embed_dim", None) or tower.hidden_size
    return ModelCost(
        name=section["name"], family=section["family"], config=config, vision_parameters=vision, merger_parameters=merger,
        decoder_parameters=sum(sizes.values()) - vision - embedding.numel() - head_count,
        embedding_parameters=embedding.numel(), head_parameters=head_count, layers=text.num_hidden_layers,
        attention_width=text.num_attention_heads * head_dim, hidden_size=text.hidden_size,
        intermediate_size=text.intermediate_size, kv_width=text.num_key_value_heads * head_dim,
        vision_layers=getattr(tower, "depth", None) or tower.num_hidden_layers, vision_attention_width=vision_width,
        pixels=_pixels(section))
