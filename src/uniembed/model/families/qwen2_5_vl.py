"""Qwen2.5-VL (Bai et al. 2025): UniME-V2's judge (§3.2, Qwen2.5-VL-7B) and a U-MARVEL backbone.

Differs from Qwen2-VL in the tower: windowed attention (full attention in ``fullatt_block_indexes``),
SwiGLU MLPs with RMSNorm; ``hidden_size`` is the tower width and ``out_hidden_size`` the merger's output.
"""
from __future__ import annotations

from .base import image_only_processor, transformers_class
from .qwen import QwenVLFamily, chat_template


class Qwen25VL(QwenVLFamily):
    model_type, title = "qwen2_5_vl", "Qwen2.5-VL"
    config_class = transformers_class("Qwen2_5_VLConfig")
    model_class = transformers_class("Qwen2_5_VLForConditionalGeneration")
    processor_class = image_only_processor("Qwen2_5_VLProcessor")
    processor_name = "Qwen2_5_VLProcessor"
    chat_template = chat_template("You are a helpful assistant.")

    def tower_config(self, vision: dict, width: int, llm_width: int) -> dict:
        # 56-pixel attention windows, so a 112x112 image already uses windowed attention.
        return {**vision, "hidden_size": width, "intermediate_size": 2 * width, "out_hidden_size": llm_width,
                "window_size": self.spatial_merge_size * self.patch_size * 2,
                "fullatt_block_indexes": [vision["depth"] - 1]}


FAMILY = Qwen25VL()
