"""Next-token loss on answer tokens only: label ids, left-padded batches, the loss by another route."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from uniembed.model.chat import ChatExample
from uniembed.model.families import family
from uniembed.model.loading import load_for_generation
from uniembed.model.processor import load_processor
from uniembed.train.generative import (IGNORE, answer_forward, answer_loss, answer_token_ids, collate,
                                       first_token_logits)

END_OF_TURN = family("qwen2_vl").end_of_turn   # the tiny models here are Qwen2-VL


@pytest.fixture(scope="module")
def model_and_processor(tiny_qwen2vl):
    return load_for_generation(tiny_qwen2vl), load_processor(tiny_qwen2vl)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    paths = []
    for colour in ("red", "blue"):
        Image.new("RGB", (56, 56), colour).save(root / f"{colour}.png")
        paths.append(str(root / f"{colour}.png"))
    return paths


def _examples(images):
    return [ChatExample((("text", "Describe the picture.\n"), ("image", images[0])), "a large red circle on the left"),
            ChatExample((("text", "Is it a match? a red circle"),), "Yes"),
            ChatExample((("text", "Query:"), ("image", images[1]), ("text", ", Candidates:a red circle.")), "No")]


def test_answer_ids_of_a_multi_token_answer_end_with_the_end_of_turn(model_and_processor):
    _, processor = model_and_processor
    tokenizer = processor.tokenizer
    prompt, _ = ChatExample((("text", "Describe the picture."),), "x").render(processor)
    ids = answer_token_ids(tokenizer, prompt, "a large red circle on the left", END_OF_TURN)
    assert len(ids) > 3 and ids[-1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.decode(ids[:-1]) == "a large red circle on the left"


def test_an_answer_that_merges_with_the_prompt_is_refused(model_and_processor):
    _, processor = model_and_processor
    with pytest.raises(ValueError, match="changes the prompt's tokens"):
        answer_token_ids(processor.tokenizer, "the answer is Ye", "s", END_OF_TURN)


def test_collate_labels_only_the_answers_of_a_left_padded_batch(model_and_processor, images):
    _, processor = model_and_processor
    examples = _examples(images)
    batch = collate(processor, examples, END_OF_TURN)
    assert batch["image_grid_thw"].shape[0] == 2 and "mm_token_type_ids" in batch
    tokenizer = processor.tokenizer
    for row, example in enumerate(examples):
        labelled = batch["labels"][row] != IGNORE
        n = int(labelled.sum())
        assert labelled[-n:].all() and not labelled[:-n].any()                     # the answer is the row's tail
        assert tokenizer.decode(batch["labels"][row, -n:-1]) == example.answer
        assert batch["attention_mask"][row, -1] == 1                                # left padding
    assert (batch["attention_mask"][:, 0] == 0).any()
    assert tokenizer.padding_side == "right" or tokenizer.padding_side == "left"  # restored, whatever it was


def test_answer_loss_equals_full_logits_cross_entropy(model_and_processor, images):
    """Computed from the last K positions; here from every position's logits, in float64."""
    model, processor = model_and_processor
    batch = collate(processor, _examples(images), END_OF_TURN)
    loss, per_row = answer_loss(model, batch)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        logits = model(**inputs, use_cache=False).logits.double()
    token_loss = F.cross_entropy(logits[:, :-1].transpose(1, 2), batch["labels"][:, 1:], ignore_index=IGNORE,
                                 reduction="none")
    counts = (batch["labels"] != IGNORE).sum(dim=1)
    assert loss.item() == pytest.approx((token_loss.sum() / counts.sum()).item(), rel=1e-5)
    assert per_row.tolist() == pytest.approx((token_loss.sum(dim=1) / counts).tolist(), rel=1e-5)
    loss.backward()
    assert model.lm_head.weight.grad is not None and model.model.visual.patch_embed.proj.weight.grad is not None
    model.zero_grad(set_to_none=True)


def test_first_token_logits_are_the_judge_position(model_and_processor, images):
    model, processor = model_and_processor
    batch = collate(processor, _examples(images), END_OF_TURN)
    first = first_token_logits(model, batch)
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    with torch.no_grad():
        full = model(**inputs, use_cache=False).logits
    for row in range(first.shape[0]):
        position = int((batch["labels"][row] != IGNORE).nonzero()[0]) - 1
        assert torch.allclose(first[row], full[row, position].float(), atol=1e-5)


def test_examples_need_parts_and_an_answer(images):
    with pytest.raises(ValueError, match="non-empty answer"):
        ChatExample((("text", "hi"),), "")
    with pytest.raises(ValueError, match="parts of kind"):
        ChatExample((("video", images[0]),), "Yes")


def test_the_trained_first_answer_logits_are_the_ones_the_judge_reads(model_and_processor, images):
    model, processor = model_and_processor
    batch = collate(processor, _examples(images), END_OF_TURN)
    _, _, first = answer_forward(model, batch)
    assert first.requires_grad
    assert torch.allclose(first.detach(), first_token_logits(model, batch), atol=1e-5)
