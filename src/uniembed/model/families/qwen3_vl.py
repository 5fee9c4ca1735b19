"""Qwen3-VL (Qwen team 2025): the backbone of U-MARVEL's newest release and of Qwen3-VL-Embedding.

Differs from Qwen2.5-VL: 16-pixel patches (one decoder token per 32x32 pixels), learned position
embeddings in the tower, DeepStack (tower features of ``deepstack_visual_indexes`` added to the first
decoder layers' visual positions), interleaved M-RoPE, a Qwen3 decoder (explicit ``head_dim``, q/k norms)
and a chat template with no default system turn. Video processor: ``Qwen3VLVideoProcessor``.
"""
from __future__ import annotations

from .base import image_only_processor, transformers_class
from .qwen import QwenVLFamily, chat_template


class Qwen3VL(QwenVLFamily):
    model_type, title = "qwen3_vl", "Qwen3-VL"
    config_class = transformers_class("Qwen3VLConfig")
    model_class = transformers_class("Qwen3VLForConditionalGeneration")
    processor_class = image_only_processor("Qwen3VLProcessor")
    processor_name = "Qwen3VLProcessor"
    video_processor_name = "Qwen3VLVideoProcessor"
    chat_template = chat_template(None)
    patch_size = 16

    def text_config(self, tokenizer, *, hidden_size=64, num_heads=2, **sizes) -> dict:
        return super().text_config(tokenizer, hidden_size=hidden_size, num_heads=num_heads,
                                   head_dim=hidden_size // num_heads, rope={"mrope_interleaved": True}, **sizes)

    def tower_config(self, vision: dict, width: int, llm_width: int) -> dict:
        # a 4x4 grid of learned position embeddings (interpolated to each image's grid); DeepStack from block 0
        return {**vision, "hidden_size": width, "intermediate_size": 2 * width, "out_hidden_size": llm_width,
                "num_position_embeddings": 16, "deepstack_visual_indexes": [0]}


FAMILY = Qwen3VL()
