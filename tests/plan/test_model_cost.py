"""The plan's FLOP and parameter counts against direct measurements: torch's FLOP counter on the tiny family
models (eager attention, so the attention products are counted too), and the published model sizes."""
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig, AutoModel

from uniembed.model.families import family
from uniembed.model.processor import load_processor
from uniembed.plan.model_cost import model_cost
from uniembed.train.lora import apply_lora, enable_activation_checkpointing
from uniembed.train.settings import LoraSettings

TEXT = "a large red circle above a small blue square"


def _counted(model_dir, side: int, train: bool, checkpointing: bool = False) -> tuple[float, int, int]:
    """(FLOPs torch counts for one sequence, its tokens, its image's decoder tokens)."""
    config, processor = AutoConfig.from_pretrained(model_dir), load_processor(model_dir)
    chosen = family(config.model_type)
    inputs = processor(text=[chosen.image_token + TEXT], images=[Image.new("RGB", (side, side), (90, 40, 20))],
                       return_tensors="pt")
    model = AutoModel.from_pretrained(model_dir, attn_implementation="eager")
    if train:
        model = apply_lora(model, LoraSettings(r=8, alpha=16, dropout=0.0))
        if checkpointing:
            enable_activation_checkpointing(model)
        model.train()
    with FlopCounterMode(display=False) as counter:
        if train:
            model(**inputs).last_hidden_state.mean().backward()
        else:
            with torch.no_grad():
                model(**inputs)
    image_tokens = int((inputs["input_ids"] == config.image_token_id).sum())
    return counter.get_total_flops(), inputs["input_ids"].shape[1], image_tokens


def _cost(model_dir):
    return model_cost({"name": "tiny", "family": AutoConfig.from_pretrained(model_dir).model_type, "path": str(model_dir)})


@pytest.mark.parametrize("side", [56, 112])
def test_forward_flops_are_what_torch_counts(tiny_family_model, side):
    """Within 7%: the formula counts attention over the whole image and the weights' biases and norms, which
    Qwen2.5-VL's windowed tower, LLaVA-OV's per-tile attention and the counter do not."""
    counted, tokens, image_tokens = _counted(tiny_family_model, side, train=False)
    predicted = _cost(tiny_family_model).forward_flops(tokens - image_tokens, 1, side)
    assert counted <= predicted <= 1.07 * counted


@pytest.mark.parametrize("checkpointing", [False, True])
def test_lora_training_flops_are_what_torch_counts(tiny_family_model, checkpointing):
    """Forward + activation gradients through the decoder (+ one recompute with checkpointing), the frozen tower
    forward only; within 15% (the tiny models' first layer needs no input gradient, a large share at 2 layers)."""
    counted, tokens, image_tokens = _counted(tiny_family_model, 112, train=True, checkpointing=checkpointing)
    predicted = _cost(tiny_family_model).training_flops(tokens - image_tokens, 1, 112, checkpointing, False)
    assert 0.95 * counted <= predicted <= 1.15 * counted


def test_activation_checkpointing_does_not_backpropagate_through_the_frozen_tower(tiny_qwen2vl):
    """What checkpointing adds is a decoder forward (and the first layer's input gradient, which the hooked
    embeddings now ask for), not the tower's backward and recompute: transformers hooks every sub-model's input
    embeddings, which made the tiny Qwen2-VL's step 35.2M FLOPs instead of 26.0M at 112 px;
    Family.enable_activation_checkpointing keeps the decoder's hook only."""
    plain, tokens, _ = _counted(tiny_qwen2vl, 112, train=True)
    checkpointed, _, _ = _counted(tiny_qwen2vl, 112, train=True, checkpointing=True)
    cost = _cost(tiny_qwen2vl)
    assert checkpointed - plain < cost.decoder_flops(tokens, tokens) + 0.5 * cost.vision_flops(1, 112)


@pytest.mark.parametrize("name", ["qwen2vl_2b", "qwen25vl_7b", "qwen3vl_8b", "llavaov_7b"])
def test_published_models_are_counted_at_their_size(name):
    section = yaml.safe_load(Path(f"config/model/{name}.yaml").read_text())
    cost = model_cost({**section, "path": "/nonexistent"})
    assert cost.parameters == pytest.approx(section["published_parameters"], rel=5e-3)
    assert 3e8 < cost.vision_parameters < 1.5e9 and cost.decoder_parameters > 1e9
    with torch.device("meta"):
        wrapped = apply_lora(family(section["family"]).model_class(cost.config), LoraSettings(r=16, alpha=32))
    assert cost.lora_parameters(16) == sum(p.numel() for p in wrapped.parameters() if p.requires_grad)


def test_a_padded_batch_costs_each_sequence_its_padded_length(tiny_qwen2vl):
    """A training batch pads a text-only sequence to the length of one with an image: torch counts the decoder
    and its attention over the padded length for both, the tower for the one image (within 15%, as above)."""
    config, processor = AutoConfig.from_pretrained(tiny_qwen2vl), load_processor(tiny_qwen2vl)
    inputs = processor(text=[family(config.model_type).image_token + TEXT, TEXT],
                       images=[Image.new("RGB", (112, 112), (90, 40, 20))], padding=True, return_tensors="pt")
    model = apply_lora(AutoModel.from_pretrained(tiny_qwen2vl, attn_implementation="eager"),
                       LoraSettings(r=8, alpha=16, dropout=0.0)).train()
    with FlopCounterMode(display=False) as counter:
        model(**inputs).last_hidden_state.mean().backward()
    padded, text = inputs["input_ids"].shape[1], int(inputs["attention_mask"][1].sum())
    cost = _cost(tiny_qwen2vl)
    predicted = (cost.training_flops(padded - cost.image_tokens(112)[1], 1, 112, False, False, padded_to=padded)
                 + cost.training_flops(text, 0, 112, False, False, padded_to=padded))
    assert 0.95 * counter.get_total_flops() <= predicted <= 1.15 * counter.get_total_flops()
    unpadded = cost.training_flops(padded - cost.image_tokens(112)[1], 1, 112, False, False) + \
        cost.training_flops(text, 0, 112, False, False)
    assert unpadded < 0.95 * counter.get_total_flops()   # the padding is a real share of this batch
