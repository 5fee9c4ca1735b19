"""Object embeddings in one forward pass (ObjEmbed, seed 002 §3.1): every proposal of an image, two global image
tokens and the texts they are matched with, from one MLLM.

An image with K proposal boxes is one user turn: the image, then the task prompt, "The coarse global image is
<global>. ", "Object j: <object><object>. " for j = 1..K and "The detailed global image is <global>. " (the released
code's prompt, ``use_two_tokens=2``). The two ``<object>`` tokens of a proposal get the inputs
:class:`uniembed.model.object_heads.ObjectHeads` makes from its RoIAlign features and box; every other token is the
tokenizer's. The tower runs once per image, whatever K: the family's :meth:`region_maps` gives both the feature maps
and the outputs the decoder's forward reuses. The final hidden states give, per proposal, its object embedding (first
token) and its objectness logit (second token, through the IoU head), and per image a coarse and a detailed global
embedding.

A text is its own user turn: "Find an object that matches the given caption. <text> <local_text>" for local
matching (objects), "Find an image that matches the given caption. <text> <global_text>" for global matching (the
global tokens); its embedding is the final hidden state at the marker. Attention is causal, as in the released
model (Qwen3-VL): the coarse global token sees the image only, the detailed one every object.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import torch

from ..data.loader import Pinnable, to_device
from ..model.families import family_of
from ..model.loading import load_for_embedding, set_bidirectional
from ..model.object_heads import ObjectHeads, ObjectHeadsConfig
from ..model.processor import load_processor
from .embedder import _device, _load_image

OBJECT, GLOBAL, LOCAL_TEXT, GLOBAL_TEXT = "<object>", "<global>", "<local_text>", "<global_text>"
NEW_TOKENS = (OBJECT, GLOBAL, LOCAL_TEXT, GLOBAL_TEXT)
#: The released code's REC_PROMPT[0] (its evaluation's task prompt for grounding and local retrieval).
TASK_PROMPT = ("Locate the specific object being described by analyzing its unique instance-level attributes, its "
               "spatial position, and its relationship with surrounding objects. ")
LOCAL_QUERY = "Find an object that matches the given caption. {} " + LOCAL_TEXT
GLOBAL_QUERY = "Find an image that matches the given caption. {} " + GLOBAL_TEXT


def image_prompt(proposals: int) -> str:
    """The text after the image for an image with ``proposals`` boxes."""
    objects = "".join(f"Object {j + 1}: {OBJECT}{OBJECT}. " for j in range(proposals))
    return f"{TASK_PROMPT}The coarse global image is {GLOBAL}. {objects}The detailed global image is {GLOBAL}."


def _render(processor, content: list[dict]) -> str:
    return processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False,
                                         add_generation_prompt=False).strip()


@dataclass(frozen=True)
class PreparedImages(Pinnable):
    tensors: dict
    boxes: list[torch.Tensor]          # each image's proposals [K, 4], original pixels
    sizes: list[tuple[int, int]]       # each image's original (width, height)


@dataclass(frozen=True)
class PreparedTexts(Pinnable):
    tensors: dict


@dataclass(frozen=True)
class ObjectInputs:
    """The CPU side (picklable, no model): images with their proposals, or texts, -> processor tensors."""
    processor: object

    def images(self, images: Sequence, boxes: Sequence) -> PreparedImages:
        """``images``: paths or PIL images; ``boxes``: each image's proposals [K, 4] (x1, y1, x2, y2, pixels)."""
        loaded = [_load_image(image) for image in images]
        boxes = [torch.as_tensor(b, dtype=torch.float32).reshape(-1, 4) for b in boxes]
        texts = [_render(self.processor, [{"type": "image"}, {"type": "text", "text": image_prompt(len(b))}])
                 for b in boxes]
        batch = self.processor(text=texts, images=loaded, padding=True, return_tensors="pt")
        return PreparedImages(dict(batch), boxes, [image.size for image in loaded])

    def texts(self, texts: Sequence[str], local: bool) -> PreparedTexts:
        template = LOCAL_QUERY if local else GLOBAL_QUERY
        rendered = [_render(self.processor, [{"type": "text", "text": template.format(t)}]) for t in texts]
        return PreparedTexts(dict(self.processor(text=rendered, padding=True, return_tensors="pt")))


@dataclass
class ImageOutputs:
    objects: torch.Tensor       # [sum K, H] object embeddings, images in order
    iou_logits: torch.Tensor    # [sum K]
    coarse: torch.Tensor        # [B, H] the first global token (short captions)
    detailed: torch.Tensor      # [B, H] the second global token (long captions)
    counts: list[int]           # K per image


class ObjectEmbedder(torch.nn.Module):
    """A family model, its :class:`ObjectHeads` and processor (with the four new tokens)."""

    def __init__(self, model, heads: ObjectHeads, processor, device: str = "cpu"):
        super().__init__()
        tokenizer = processor.tokenizer
        missing = [t for t in NEW_TOKENS if tokenizer.convert_tokens_to_ids(t) in (None, tokenizer.unk_token_id)]
        if missing:
            raise ValueError(f"the tokenizer lacks {missing}: make the embedder with ObjectEmbedder.from_base")
        self.ids = {t: tokenizer.convert_tokens_to_ids(t) for t in NEW_TOKENS}
        self.processor, self.family = processor, family_of(model)
        set_bidirectional(model, False)
        self.device = _device(device)
        self.model, self.heads = model.to(self.device), heads.to(self.device)

    @property
    def inputs(self) -> ObjectInputs:
        return ObjectInputs(self.processor)

    @classmethod
    def from_base(cls, path: str | os.PathLike, *, roi_size: int = 7, seed: int = 0, device: str = "auto"):
        """A new object embedder on the model saved in ``path``: the four tokens added (embedding rows grown where
        the vocabulary has no room), the heads initialised from ``seed``."""
        processor = load_processor(path)
        model = load_for_embedding(path, torch_dtype=_dtype(device))
        processor.tokenizer.add_tokens(list(NEW_TOKENS), special_tokens=True)
        channels, strides = family_of(model).region_levels(model.config)
        with torch.random.fork_rng(devices=[]):   # new rows and heads a function of the seed alone
            torch.manual_seed(seed)
            if len(processor.tokenizer) > model.get_input_embeddings().num_embeddings:
                model.resize_token_embeddings(len(processor.tokenizer), mean_resizing=False)
            heads = ObjectHeads(ObjectHeadsConfig(model.config.get_text_config().hidden_size, channels, strides,
                                                  roi_size))
        return cls(model, heads, processor, device)

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, device: str = "auto"):
        """An object embedder saved by :meth:`save_pretrained` (or by ``train_objembed``)."""
        model = load_for_embedding(path, torch_dtype=_dtype(device))
        return cls(model, ObjectHeads.load(path), load_processor(path), device)

    def save_pretrained(self, directory: str | os.PathLike, model=None) -> None:
        """The decoder (``model``: e.g. LoRA merged; default this one), the processor and the heads."""
        (model or self.model).save_pretrained(directory)
        self.processor.save_pretrained(directory)
        self.heads.save(directory)

    def forward(self, *prepared: PreparedImages | PreparedTexts) -> list[ImageOutputs | torch.Tensor]:
        """Prepared image and text batches in one call (a DDP wrapper sees one forward per backward): each image
        batch's :class:`ImageOutputs`, each text batch's embeddings, in order."""
        return [self.forward_images(p) if isinstance(p, PreparedImages) else self.forward_texts(p) for p in prepared]

    def forward_images(self, prepared: PreparedImages) -> ImageOutputs:
        """Object embeddings, objectness logits and global tokens of a prepared batch, with gradients."""
        batch = to_device(prepared.tensors, self.device)
        forward_kwargs, maps, sizes = self.family.region_maps(self.model, batch["pixel_values"], batch["image_grid_thw"])
        tokens = []
        for image_maps, boxes, (width, height), original in zip(maps, prepared.boxes, sizes, prepared.sizes):
            scale = torch.tensor([width / original[0], height / original[1]] * 2, device=self.device)
            tokens.append(self.heads.object_inputs(image_maps, boxes.to(self.device) * scale, (width, height)))
        input_ids = batch["input_ids"]
        embed = self.model.get_input_embeddings()(input_ids)
        is_object = input_ids == self.ids[OBJECT]
        objects_in = torch.cat(tokens).reshape(-1, embed.shape[-1]).to(embed.dtype)
        if int(is_object.sum()) != len(objects_in):
            raise ValueError(f"{int(is_object.sum())} {OBJECT} tokens in the prompts for {len(objects_in)} object inputs")
        embed = embed.masked_scatter(is_object[..., None], objects_in)   # row-major: image by image, A then B
        rest = {k: v for k, v in batch.items() if k not in ("input_ids", "pixel_values")}   # masks, grids, token types
        hidden = self.model(input_ids=input_ids, inputs_embeds=embed, use_cache=False, **rest,
                            **forward_kwargs).last_hidden_state
        object_states = hidden[is_object].reshape(-1, 2, hidden.shape[-1])
        global_states = hidden[input_ids == self.ids[GLOBAL]].reshape(-1, 2, hidden.shape[-1])
        return ImageOutputs(object_states[:, 0].float(), self.heads.iou_logits(object_states[:, 1]).float(),
                            global_states[:, 0].float(), global_states[:, 1].float(), [len(b) for b in prepared.boxes])

    def forward_texts(self, prepared: PreparedTexts) -> torch.Tensor:
        """Text embeddings [T, H] at each text's marker (local or global), with gradients."""
        batch = to_device(prepared.tensors, self.device)
        hidden = self.model(**batch, use_cache=False).last_hidden_state
        marker = (batch["input_ids"] == self.ids[LOCAL_TEXT]) | (batch["input_ids"] == self.ids[GLOBAL_TEXT])
        if not (marker.sum(1) == 1).all():
            raise ValueError("each text must hold exactly one marker token")
        return hidden[marker].float()


def _dtype(device: str):
    return torch.bfloat16 if _device(device).type == "cuda" else torch.float32
