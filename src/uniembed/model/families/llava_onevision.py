"""LLaVA-OneVision (Li et al. 2024, the ``-hf`` checkpoints): UniME-V2 trains it as an embedder (§4.1, lr 2e-5).

A SigLIP tower (``vision_tower``, 14-pixel patches at one tile size), a two-layer MLP projector
(``multi_modal_projector``) and a Qwen2 decoder; "anyres": an image is the base tile plus tiles of the best
grid among ``image_grid_pinpoints``, each row of tile features closed by a learned ``image_newline``. The
placeholder is ``<image>``; the chat template renders every image of a turn before its text parts, each
text part on a new line (so an embedding prompt's instruction sits between the image and the text:
:mod:`uniembed.model.prompts` masks it out of the two content pieces). Tiny factory: one 56-pixel tile, grids
up to the processor's max pixels.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

from .base import Family, ImageEncoder, check_head_size, loaded, transformers_class, unwrap

if TYPE_CHECKING:
    import torch

#: The ``llava-hf/llava-onevision-qwen2-*-ov-hf`` chat template (images, then videos, then each text part after
#: a newline), with a branch for string content (the released one iterates the parts only).
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'video') %}{{ '<video>' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ '\\n' + content['text'] }}"
    "{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
_VIDEO_KEYS = ("do_convert_rgb", "do_normalize", "do_rescale", "do_resize", "image_mean", "image_std", "resample",
               "rescale_factor", "size")


def _image_only_processor() -> type:
    """``LlavaOnevisionProcessor`` without its video processor, made when first needed (transformers loads then)."""
    from transformers import LlavaOnevisionProcessor

    class ImageOnlyLlavaOnevisionProcessor(LlavaOnevisionProcessor):
        """``LlavaOnevisionProcessor`` with images and text only (its settings as named arguments: loading passes
        only the saved settings the constructor's code names)."""

        def __init__(self, image_processor=None, tokenizer=None, num_image_tokens=None,
                     vision_feature_select_strategy=None, chat_template=None, image_token="<image>",
                     video_token="<video>", vision_aspect_ratio="anyres_max_9", **kwargs):
            super().__init__(image_processor, tokenizer, video_processor=None, num_image_tokens=num_image_tokens,
                             vision_feature_select_strategy=vision_feature_select_strategy, chat_template=chat_template,
                             image_token=image_token, video_token=video_token, vision_aspect_ratio=vision_aspect_ratio,
                             **kwargs)

    return ImageOnlyLlavaOnevisionProcessor


class LlavaOneVision(Family):
    model_type, title = "llava_onevision", "LLaVA-OneVision"
    config_class = transformers_class("LlavaOnevisionConfig")
    model_class = transformers_class("LlavaOnevisionForConditionalGeneration")
    processor_class, processor_name = loaded(_image_only_processor), "LlavaOnevisionProcessor"
    video_processor_name = "LlavaOnevisionVideoProcessor"
    special_tokens = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>")
    named_tokens = {"image_token": "<image>", "video_token": "<video>"}
    eos_token, pad_token, end_of_turn = "<|im_end|>", "<|endoftext|>", "<|im_end|>"
    image_token = "<image>"
    chat_template = CHAT_TEMPLATE
    instruction_separator = ""      # the template starts every text part on a new line itself
    vision_modules = ("vision_tower", "multi_modal_projector")
    # transformers 5 saves the SigLIP tower flat; the released checkpoints (and vLLM's loader) nest it
    released_key_prefixes = (("vision_tower.", "vision_tower.vision_model."),)
    patch_size = 14
    vision_head_dim = 16

    def tiny_config(self, processor, *, vocab_size=2048, hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1,
                    intermediate_size=128, vision_depth=2, vision_embed_dim=32, init_std=0.02, vision_init_std=0.02):
        """The tile size and the anyres grids are the processor's (the model packs features by them too)."""
        check_head_size(hidden_size, num_heads)
        tokenizer, images = processor.tokenizer, processor.image_processor
        tile, grid = images.size["height"], images.image_grid_pinpoints
        if vision_embed_dim % self.vision_head_dim:
            raise ValueError(f"vision_embed_dim={vision_embed_dim} must be a multiple of {self.vision_head_dim}")
        ids = tokenizer.convert_tokens_to_ids
        text = dict(model_type="qwen2", vocab_size=vocab_size, hidden_size=hidden_size,
                    intermediate_size=intermediate_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
                    num_key_value_heads=num_kv_heads, max_window_layers=num_layers, initializer_range=init_std,
                    rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0},
                    bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"), pad_token_id=tokenizer.pad_token_id)
        vision = dict(model_type="siglip_vision_model", hidden_size=vision_embed_dim,
                      intermediate_size=4 * vision_embed_dim, num_hidden_layers=vision_depth,
                      num_attention_heads=vision_embed_dim // self.vision_head_dim, image_size=tile,
                      patch_size=self.patch_size, vision_use_head=False)   # as released: no pooling head
        config = self.config_class(text_config=text, vision_config=vision, image_token_id=ids("<image>"),
                                   video_token_id=ids("<video>"), vision_feature_layer=-1,
                                   vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9",
                                   image_grid_pinpoints=[list(g) for g in grid], tie_word_embeddings=False)
        config.vision_config.initializer_range = vision_init_std   # SigLIP's init reads the top-level range
        config.initializer_range = init_std
        return config

    def build_processor(self, tokenizer, *, min_pixels: int, max_pixels: int):
        """One tile of sqrt(min_pixels) (rounded down to whole patches); grids of tiles up to ``max_pixels``."""
        from transformers.models.llava_onevision.image_processing_pil_llava_onevision import (
            LlavaOnevisionImageProcessorPil)

        tile = math.isqrt(min_pixels) // self.patch_size * self.patch_size
        grid = [[tile * rows, tile * cols] for rows in range(1, 4) for cols in range(1, 4)
                if (tile * rows) * (tile * cols) <= max_pixels]
        image_processor = LlavaOnevisionImageProcessorPil(size={"height": tile, "width": tile},
                                                          image_grid_pinpoints=grid)
        return self.processor_class(image_processor, tokenizer, chat_template=tokenizer.chat_template,
                                    num_image_tokens=(tile // self.patch_size) ** 2,
                                    vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9")

    def processor_files(self, image_config: dict) -> dict[str, dict]:
        video = {**{key: image_config[key] for key in _VIDEO_KEYS if key in image_config},
                 "video_processor_type": self.video_processor_name, "processor_class": self.processor_name}
        return {"preprocessor_config.json": {**image_config, "processor_class": self.processor_name},
                "video_preprocessor_config.json": video}

    def image_tokens(self, config, side: int, pixels: tuple[int, int] | None = None) -> tuple[int, int]:
        """Anyres: the base tile plus the tiles of the best grid among ``image_grid_pinpoints`` run through the
        tower; the decoder receives the base tile's tokens, the grid's (unpadded, pooled past anyres_max_9) and
        one newline per row, counted by transformers' own processor arithmetic."""
        import functools
        from types import SimpleNamespace

        from transformers.image_processing_utils import select_best_resolution
        from transformers.models.llava_onevision.processing_llava_onevision import LlavaOnevisionProcessor as P

        tile, patch = config.vision_config.image_size, config.vision_config.patch_size
        per_tile = (tile // patch) ** 2
        height, width = select_best_resolution([side, side], config.image_grid_pinpoints)
        stand_in = SimpleNamespace(image_processor=SimpleNamespace(image_grid_pinpoints=config.image_grid_pinpoints),
                                   num_image_tokens=per_tile, vision_aspect_ratio=config.vision_aspect_ratio)
        stand_in._get_unpadded_features = functools.partial(P._get_unpadded_features, stand_in)
        return (1 + (height // tile) * (width // tile)) * per_tile, P._get_number_of_features(stand_in, side, side,
                                                                                             tile, tile)

    def image_encoder(self, model, image_processor) -> ImageEncoder:
        """Tower + projector (what vision pretraining trains), read through the model's own anyres packing."""
        from torch import nn

        inner = _named_base(model)
        trained = nn.ModuleDict({"tower": inner.vision_tower, "projector": inner.multi_modal_projector})
        return ImageEncoder(trained, lambda images: self._features(inner, image_processor, images))

    def _features(self, inner, image_processor, images: Sequence) -> torch.Tensor:
        inputs = image_processor(images=list(images), return_tensors="pt")
        dtype = next(inner.vision_tower.parameters()).dtype
        device = next(inner.vision_tower.parameters()).device
        out = inner.get_image_features(pixel_values=inputs["pixel_values"].to(device=device, dtype=dtype),
                                       image_sizes=inputs["image_sizes"].to(device))
        features = getattr(out, "pooler_output", out)
        if len({f.shape for f in features}) != 1:
            raise ValueError(f"images of different sizes: feature shapes {sorted({tuple(f.shape) for f in features})}")
        import torch

        return torch.stack(list(features))


def _named_base(model):
    """The ``LlavaOnevisionModel`` inside a model with or without LM head (PEFT-wrapped or not)."""
    inner = unwrap(model)
    return getattr(inner, "model", inner) if not hasattr(inner, "vision_tower") else inner


FAMILY = LlavaOneVision()
