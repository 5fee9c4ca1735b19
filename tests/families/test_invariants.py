"""The family matrix: each registered family's tiny model keeps what the pipeline relies on.

Pooling reads the decoder's final-norm output (VLM2Vec PR #213: on newer transformers ``hidden_states[-1]``
is taken before the final norm and every score dropped silently; here the norm is applied by hand to the
last decoder layer's output, so a transformers upgrade that moves the norm fails), LoRA wraps exactly the
decoder's projections at every depth with the tower frozen, and the judge's score from one forward is the
first generation step's probability. The other invariants run per family where they are tested for
Qwen2-VL (``tiny_family_model``): padding and batch invariance, instruction masking and the causal /
bidirectional switch (tests/embed/test_embedder.py), resume bit-exact and adapter-loaded = merged
(tests/train/test_trainer.py).
"""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from uniembed.embed.embedder import EmbedItem, Embedder, EmbeddingMode
from uniembed.judge.prompt import build_judge_prompt
from uniembed.judge.transformers_backend import TransformersJudge
from uniembed.judge.pairs import JudgePair
from uniembed.model.chat import yes_no_token_ids
from uniembed.model.families import family_of, family_of_dir
from uniembed.model.loading import load_for_embedding, load_for_generation
from uniembed.model.pooling import last_token_pool, mean_pool
from uniembed.model.processor import load_processor
from uniembed.model.prompts import content_mask
from uniembed.train.lora import apply_lora, enable_activation_checkpointing
from uniembed.train.settings import LoraSettings


@pytest.fixture(scope="module")
def items(tmp_path_factory) -> list[EmbedItem]:
    root = tmp_path_factory.mktemp("family-images")
    paths = []
    for i, (size, colour) in enumerate([((56, 56), (220, 20, 20)), ((112, 84), (20, 200, 20))]):
        Image.new("RGB", size, colour).save(root / f"{i}.png")
        paths.append(str(root / f"{i}.png"))
    return [EmbedItem("a large red circle on the left", None, "Find the picture."), EmbedItem(None, paths[0]),
            EmbedItem("make it blue", paths[1], "Retrieve the edited image."), EmbedItem("small")]


@pytest.mark.parametrize("mode", [EmbeddingMode(normalize=False),
                                  EmbeddingMode(pooling="last", attention="causal", normalize=False)],
                         ids=["mean-bidirectional", "last-causal"])
def test_pooling_reads_the_final_norm_hidden_state(tiny_family_model, items, mode):
    embedder = Embedder.from_pretrained(tiny_family_model, mode=mode, device="cpu")
    text_model = family_of(embedder.model).text_model(embedder.model)
    seen = {}
    hooks = [text_model.layers[-1].register_forward_hook(
                 lambda m, i, o: seen.update(last_layer=o[0] if isinstance(o, tuple) else o)),
             text_model.norm.register_forward_hook(lambda m, i, o: seen.update(normed=o))]
    with torch.no_grad():
        pooled = embedder.forward(items)
    for hook in hooks:
        hook.remove()
    by_hand = text_model.norm(seen["last_layer"])          # the final norm applied to the last layer, by hand
    assert torch.allclose(seen["normed"], by_hand, atol=1e-6)
    assert (seen["last_layer"] - by_hand).abs().max() > 1e-2   # the norm does change the states
    prompts, batch = embedder.tokenize(items)
    if mode.pooling == "mean":
        expected = mean_pool(by_hand, content_mask(prompts, batch["input_ids"], batch["attention_mask"],
                                                   embedder.processor.tokenizer, embedder.processor.image_token))
    else:
        expected = last_token_pool(by_hand, batch["attention_mask"])
    assert torch.allclose(pooled, expected, atol=1e-5)


def test_lora_wraps_every_decoder_projection_and_no_tower_parameter(tiny_family_model):
    model = load_for_embedding(tiny_family_model)
    chosen = family_of(model)
    layers = model.config.get_text_config().num_hidden_layers
    wrapped = apply_lora(model, LoraSettings(r=4))
    lora_modules = {name.rsplit(".lora_A", 1)[0] for name, _ in wrapped.named_parameters() if ".lora_A." in name}
    assert len(lora_modules) == 7 * layers                  # q, k, v, o, gate, up, down at every depth
    assert all(".language_model.layers." in name for name in lora_modules)
    trainable = [name for name, p in wrapped.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_" in name for name in trainable)
    tower = chosen.frozen_parameters(wrapped)
    assert tower and not any(p.requires_grad for name, p in wrapped.get_base_model().named_parameters() if name in tower)


def test_judge_score_is_the_first_generation_steps_probability(tiny_family_model, items):
    """The judge's one forward (UniME-V2 §3.2: s = e_yes / (e_yes + e_no)) equals the softmax over (No, Yes)
    of the first step's logits of ``generate`` on the same unpadded prompt."""
    judge = TransformersJudge(tiny_family_model, batch_size=3, device="cpu")
    pairs = [JudgePair("q", f"c{i}", i == 0, None if i == 0 else i, items[2], candidate) for i, candidate in enumerate(items)]
    scores = [r.score for r in judge.score(pairs)]
    processor, model = load_processor(tiny_family_model), load_for_generation(tiny_family_model).eval()
    yes, no = yes_no_token_ids(processor.tokenizer)
    for pair, score in zip(pairs, scores):
        text, paths = build_judge_prompt(pair.query, pair.candidate).render(processor)
        batch = processor(text=[text], images=[Image.open(p).convert("RGB") for p in paths] or None,
                          return_tensors="pt")
        with torch.no_grad():
            first = model.generate(**batch, max_new_tokens=1, do_sample=False, output_logits=True,
                                   return_dict_in_generate=True, pad_token_id=processor.tokenizer.pad_token_id)
        logits = first.logits[0][0]
        assert score == pytest.approx(torch.softmax(logits[[no, yes]].double(), 0)[1].item(), abs=1e-5)
    assert len({round(s, 6) for s in scores}) > 1


def test_the_family_is_read_from_the_saved_config(tiny_family_model):
    chosen = family_of_dir(tiny_family_model)
    assert type(load_for_generation(tiny_family_model)) is chosen.model_class
    assert type(load_processor(tiny_family_model)) is chosen.processor_class
    assert family_of(load_for_embedding(tiny_family_model)) is chosen


def test_activation_checkpointing_gives_the_same_gradients(tiny_family_model, items):
    """The family's checkpointing switch (non-reentrant, inputs requiring grad) changes memory, not gradients."""
    grads = []
    for checkpointing in (False, True):
        embedder = Embedder.from_pretrained(tiny_family_model, mode=EmbeddingMode(), device="cpu")
        torch.manual_seed(0)
        embedder.model = apply_lora(embedder.model, LoraSettings(r=4))
        for name, parameter in embedder.model.named_parameters():
            if ".lora_B." in name:
                torch.nn.init.normal_(parameter, std=0.02, generator=torch.Generator().manual_seed(len(name)))
        if checkpointing:
            enable_activation_checkpointing(embedder.model)
        embedder.model.train()
        (embedder.forward(items) * torch.linspace(-1, 1, embedder.hidden_size)).sum().backward()
        grads.append({n: p.grad.clone() for n, p in embedder.model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 0
    assert all(torch.allclose(grads[0][n], grads[1][n], atol=1e-6) for n in grads[0])
    assert any(grads[0][n].abs().max() > 0 for n in grads[0] if ".lora_A." in n)


@pytest.mark.parametrize("side", [40, 84, 112, 200])
def test_image_token_counts_are_what_the_processor_and_tower_produce(tiny_family_model, side):
    """Family.image_tokens (the cost plan's count) against the saved processor's image placeholders and the
    pixel rows the tower runs over (Qwen: one row per patch; LLaVA-OV: tiles of (tile / patch)^2 tokens)."""
    from PIL import Image
    from transformers import AutoConfig

    from uniembed.model.families import family
    from uniembed.model.processor import load_processor

    config, processor = AutoConfig.from_pretrained(tiny_family_model), load_processor(tiny_family_model)
    chosen = family(config.model_type)
    size = processor.image_processor.size
    pixels = (size["shortest_edge"], size["longest_edge"]) if size.get("longest_edge") else None
    inputs = processor(text=[chosen.image_token], images=[Image.new("RGB", (side, side), (90, 40, 20))],
                       return_tensors="pt")
    pixel_values = inputs["pixel_values"]
    if pixel_values.dim() == 5:   # anyres tiles: (images, tiles, channels, tile, tile)
        tower = pixel_values.shape[1] * (pixel_values.shape[-1] // config.vision_config.patch_size) ** 2
    else:                          # one row per patch
        tower = pixel_values.shape[0]
    decoder = int((inputs["input_ids"] == config.image_token_id).sum())
    assert chosen.image_tokens(config, side, pixels) == (tower, decoder)
