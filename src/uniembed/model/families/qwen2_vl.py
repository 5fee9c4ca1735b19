"""Qwen2-VL (Wang et al. 2024): the family U-MARVEL (§4.1) and UniME-V2 (§4.1) train as embedders.

Tower: ViT-675M with 14-pixel patches and a 2x2 patch merger (``embed_dim`` is the tower width,
``hidden_size`` the merger's output = the decoder width); decoder: Qwen2 with M-RoPE.
"""
from __future__ import annotations

from .base import image_only_processor, transformers_class
from .qwen import QwenVLFamily, chat_template


class Qwen2VL(QwenVLFamily):
    model_type, title = "qwen2_vl", "Qwen2-VL"
    config_class = transformers_class("Qwen2VLConfig")
    model_class = transformers_class("Qwen2VLForConditionalGeneration")
    processor_class = image_only_processor("Qwen2VLProcessor")
    processor_name = "Qwen2VLProcessor"
    chat_template = chat_template("You are a helpful assistant.")
    patch_level_maps = True

    def tower_config(self, vision: dict, width: int, llm_width: int) -> dict:
        return {**vision, "embed_dim": width, "hidden_size": llm_width, "mlp_ratio": 4}


FAMILY = Qwen2VL()
