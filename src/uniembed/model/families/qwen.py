"""What the Qwen-VL families share: special tokens, the chat format, M-RoPE and the tiny factory's text config.

Qwen2-VL, Qwen2.5-VL and Qwen3-VL (and LLaVA-OneVision's Qwen2 decoder) use the same ChatML turns
(``<|im_start|>role\\n ... <|im_end|>\\n``); the three Qwen-VL families also share the vision tokens
(``<|vision_start|><|image_pad|><|vision_end|>``, one ``<|image_pad|>`` per merged 2x2 patch block).
"""
from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    import torch

from .base import Family, ImageEncoder, check_head_size

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
NAMED_TOKENS = {"image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
                "vision_start_token": "<|vision_start|>", "vision_end_token": "<|vision_end|>"}


def chat_template(default_system: str | None) -> str:
    """The Qwen-VL instruct chat template for text and image turns.

    ``default_system`` is the system turn added when the first message is not one: Qwen2-VL and Qwen2.5-VL
    ("You are a helpful assistant.", their ``chat_template.json``); Qwen3-VL adds none. (Videos render as in
    Qwen2-VL; Qwen3-VL's tool-call and thinking branches are left out: no stage sends tools.)
    """
    system = ("{% if loop.first and message['role'] != 'system' %}"
              f"<|im_start|>system\n{default_system}<|im_end|>\n{{% endif %}}") if default_system else ""
    return (
        "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
        "{% for message in messages %}" + system +
        "<|im_start|>{{ message['role'] }}\n"
        "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
        "{% else %}{% for content in message['content'] %}"
        "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
        "{% set image_count.value = image_count.value + 1 %}"
        "{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
        "<|vision_start|><|image_pad|><|vision_end|>"
        "{% elif content['type'] == 'video' or 'video' in content %}"
        "{% set video_count.value = video_count.value + 1 %}"
        "{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
        "<|vision_start|><|video_pad|><|vision_end|>"
        "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
        "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )


def mrope_section(head_dim: int) -> list[int]:
    """Split the rotary half-dimension into (temporal, height, width) sections in Qwen2-VL's 2:3:3 ratio.

    ``mrope_section(128) == [16, 24, 24]``, the value in the Qwen2-VL-7B and Qwen3-VL configs; the sum is
    always ``head_dim // 2``.
    """
    if head_dim % 2 or head_dim < 8:
        raise ValueError(f"head_dim={head_dim} must be even and at least 8 for M-RoPE")
    half = head_dim // 2
    temporal = half // 4
    height = (half - temporal) // 2
    return [temporal, height, half - temporal - height]


class QwenVLFamily(Family):
    """The Qwen-VL families: ChatML, ``<|image_pad|>`` tokens, a ``visual`` tower with a 2x2 merger."""

    special_tokens = SPECIAL_TOKENS
    named_tokens = NAMED_TOKENS
    eos_token, pad_token, end_of_turn = "<|im_end|>", "<|endoftext|>", "<|im_end|>"
    image_token = "<|image_pad|>"
    vision_modules = ("visual",)
    merger_modules = ("merger", "deepstack_merger_list")   # over 2x2-merged patches
    video_processor_name = "Qwen2VLVideoProcessor"
    patch_size = 14
    spatial_merge_size = 2
    vision_head_dim = 16

    def text_config(self, tokenizer, *, vocab_size=2048, hidden_size=64, num_layers=2, num_heads=2, num_kv_heads=1,
                    intermediate_size=128, init_std=0.02, head_dim=None, **extra) -> dict:
        """The decoder's config at toy sizes (head size one vLLM serves; M-RoPE over it)."""
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads={num_heads} must divide by num_kv_heads={num_kv_heads}")
        head = check_head_size(hidden_size, num_heads, head_dim)
        ids = tokenizer.convert_tokens_to_ids
        return dict(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                    num_hidden_layers=num_layers, num_attention_heads=num_heads, num_key_value_heads=num_kv_heads,
                    rope_parameters={"rope_type": "default", "rope_theta": 1_000_000.0,
                                     "mrope_section": mrope_section(head), **extra.pop("rope", {})},
                    initializer_range=init_std, bos_token_id=ids("<|endoftext|>"), eos_token_id=ids("<|im_end|>"),
                    pad_token_id=tokenizer.pad_token_id, **({"head_dim": head} if head_dim else {}), **extra)

    def vision_config(self, *, vision_depth=2, vision_embed_dim=32, vision_init_std=0.02) -> dict:
        if vision_embed_dim % self.vision_head_dim:
            raise ValueError(f"vision_embed_dim={vision_embed_dim} must be a multiple of {self.vision_head_dim}")
        return dict(depth=vision_depth, num_heads=vision_embed_dim // self.vision_head_dim, patch_size=self.patch_size,
                    spatial_merge_size=self.spatial_merge_size, temporal_patch_size=2, initializer_range=vision_init_std)

    def tiny_config(self, processor, *, vision_depth=2, vision_embed_dim=32, vision_init_std=0.02, **sizes):
        tokenizer = processor.tokenizer
        vision = self.vision_config(vision_depth=vision_depth, vision_embed_dim=vision_embed_dim,
                                    vision_init_std=vision_init_std)
        text = self.text_config(tokenizer, **sizes)
        ids = tokenizer.convert_tokens_to_ids
        return self.config_class(
            text_config=text, vision_config=self.tower_config(vision, vision_embed_dim, text["hidden_size"]),
            image_token_id=ids("<|image_pad|>"), video_token_id=ids("<|video_pad|>"),
            vision_start_token_id=ids("<|vision_start|>"), vision_end_token_id=ids("<|vision_end|>"),
            tie_word_embeddings=False, initializer_range=text["initializer_range"])

    @abc.abstractmethod
    def tower_config(self, vision: dict, width: int, llm_width: int) -> dict:
        """The family's own tower keys added to the shared ones (widths are named differently per family)."""

    def build_processor(self, tokenizer, *, min_pixels: int, max_pixels: int):
        from transformers import Qwen2VLImageProcessorPil

        image_processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels,
                                                   patch_size=self.patch_size, merge_size=self.spatial_merge_size)
        return self.processor_class(image_processor, tokenizer, chat_template=tokenizer.chat_template)

    def processor_files(self, image_config: dict) -> dict[str, dict]:
        """The flat ``preprocessor_config.json`` (min/max pixels spelled out) and a video processor config
        with the image processor's settings: vLLM builds the stock processor, video processor included."""
        size = image_config.get("size") or {}
        min_pixels = int(size.get("shortest_edge", image_config.get("min_pixels")))
        max_pixels = int(size.get("longest_edge", image_config.get("max_pixels")))
        missing = [key for key in _SHARED_KEYS if key not in image_config]
        if missing:
            raise ValueError(f"image processor config lacks {missing}; cannot derive the video processor config")
        video = {**{key: image_config[key] for key in _SHARED_KEYS},
                 "size": {"shortest_edge": min_pixels, "longest_edge": max_pixels},
                 "min_pixels": min_pixels, "max_pixels": max_pixels,
                 "min_frames": 4, "max_frames": 768, "do_sample_frames": False,
                 "video_processor_type": self.video_processor_name, "processor_class": self.processor_name}
        image = {**image_config, "min_pixels": min_pixels, "max_pixels": max_pixels,
                 "processor_class": self.processor_name}
        return {"preprocessor_config.json": image, "video_preprocessor_config.json": video}

    def image_tokens(self, config, side: int, pixels: tuple[int, int] | None = None) -> tuple[int, int]:
        """The processor's resize to whole merged patches (``smart_resize`` within ``pixels``): patches for the
        tower, a merge-size squared fewer for the decoder."""
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

        vision = config.vision_config
        patch, merge = vision.patch_size, vision.spatial_merge_size
        bounds = dict(zip(("min_pixels", "max_pixels"), pixels)) if pixels else {}
        height, width = smart_resize(side, side, factor=patch * merge, **bounds)
        patches = (height // patch) * (width // patch)
        return patches, patches // merge ** 2

    def image_encoder(self, model, image_processor) -> ImageEncoder:
        """The ``visual`` tower with its merger: the merged tokens of same-size images."""
        tower = self.vision_tower(model)
        return ImageEncoder(tower, lambda images: self._merged_tokens(tower, image_processor, images))

    #: whether the tower's per-patch outputs (``last_hidden_state``) come in the processor's order (merge blocks of
    #: 2 x 2 patches, blocks row by row), so they make a feature map at the patch stride (Qwen2-VL; Qwen2.5-VL's
    #: windowed tower reorders them)
    patch_level_maps = False

    def region_levels(self, config) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """The merged tokens (decoder width, stride patch x merge) and, where their order is known, the tower's patch
        outputs (tower width, stride patch): the levels ObjEmbed's RoIAlign reads here (seed 002 §3.1)."""
        vision, stride = config.vision_config, self.patch_size * self.spatial_merge_size
        merged = ((config.get_text_config().hidden_size,), (stride,))
        if not self.patch_level_maps:
            return merged
        return (vision.embed_dim, *merged[0]), (self.patch_size, *merged[1])

    def region_maps(self, model, pixel_values, image_grid_thw):
        import torch

        from .base import unwrap
        inner = unwrap(model)
        with torch.no_grad():   # the tower is frozen
            outputs = inner.get_image_features(pixel_values.to(self.vision_tower(model).dtype), image_grid_thw,
                                               return_dict=True)
        m = self.spatial_merge_size
        maps, sizes, start = [], [], 0
        for merged, (t, h, w) in zip(outputs.pooler_output, image_grid_thw.tolist()):
            levels = [merged.reshape(h // m, w // m, -1).permute(2, 0, 1)]
            if self.patch_level_maps:
                patches = outputs.last_hidden_state[start:start + t * h * w]
                blocks = patches.reshape(h // m, w // m, m, m, -1)          # the processor's merge-block order
                levels.insert(0, blocks.permute(4, 0, 2, 1, 3).reshape(-1, h, w))
            start += t * h * w
            maps.append(levels)
            sizes.append((w * self.patch_size, h * self.patch_size))
        return {"mm_encoder_outputs": {"image": outputs}}, maps, sizes

    @staticmethod
    def _merged_tokens(tower, image_processor, images: Sequence) -> torch.Tensor:
        inputs = image_processor(images=list(images), return_tensors="pt")
        grid = inputs["image_grid_thw"]
        if not (grid == grid[0]).all():
            raise ValueError(f"images of different sizes: grids {grid.tolist()}")
        device = next(tower.parameters()).device
        dtype = next(tower.parameters()).dtype
        merged = tower(inputs["pixel_values"].to(device=device, dtype=dtype), grid_thw=grid.to(device)).pooler_output
        return merged.reshape(len(images), -1, merged.shape[-1])


_SHARED_KEYS = ("do_convert_rgb", "do_normalize", "do_rescale", "do_resize", "image_mean", "image_std",
                "merge_size", "patch_size", "resample", "rescale_factor", "temporal_patch_size")
