"""Embedder invariances and modes on the tiny model (U-MARVEL §3.1.1 Findings 1-2)."""
import numpy as np
import pytest
import torch
from PIL import Image

from uniembed.embed.embedder import EmbedItem, Embedder, EmbeddingMode
from uniembed.model.processor import load_processor
from uniembed.model.prompts import PromptStyle, build_prompt, content_mask

MODES = [EmbeddingMode(), EmbeddingMode(pooling="last", attention="causal"),
         EmbeddingMode(pooling="last", attention="causal", compression="Summarize above image and sentence in one word:")]


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    root = tmp_path_factory.mktemp("img")
    paths = []
    for i, colour in enumerate([(220, 20, 20), (20, 200, 20), (20, 20, 220)]):
        Image.new("RGB", (56, 56), colour).save(root / f"{i}.png")
        paths.append(str(root / f"{i}.png"))
    return [EmbedItem("a large red circle on the left", None, "Find the picture."),
            EmbedItem(None, paths[0]),
            EmbedItem("make it blue", paths[1], "Retrieve the edited image."),
            EmbedItem("small", None),
            EmbedItem("a green square at the top of the picture, drawn large", paths[2])]


def embedder(tiny_qwen2vl, mode):
    return Embedder.from_pretrained(tiny_qwen2vl, mode=mode, device="cpu")


@pytest.mark.parametrize("mode", MODES, ids=["mean-bidir", "last-causal", "last-compress"])
def test_padding_side_and_batch_composition_do_not_change_embeddings(tiny_family_model, items, mode):
    emb = embedder(tiny_family_model, mode)
    together = emb.encode(items, batch_size=8)
    alone = np.stack([emb.encode([it])[0] for it in items])
    emb.processor.tokenizer.padding_side = "left"
    left = emb.encode(items, batch_size=8)
    emb.processor.tokenizer.padding_side = "right"
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together, left, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.abs(together[0] - together[3]).max() > 1e-3  # different items differ


def test_mean_pooling_masks_the_instruction_and_matches_a_direct_computation(tiny_family_model, items):
    emb = embedder(tiny_family_model, EmbeddingMode(normalize=False))
    item = items[2]
    prompts, batch = emb.tokenize([item])
    with torch.no_grad():
        hidden = emb.model(**batch).last_hidden_state[0]
    ids = batch["input_ids"][0].tolist()
    tok = emb.processor.tokenizer
    image_id = tok.convert_tokens_to_ids(emb.processor.image_token)
    n_prefix = len(tok(prompts[0].prefix, add_special_tokens=False)["input_ids"])
    n_suffix = len(tok(prompts[0].suffix, add_special_tokens=False)["input_ids"])
    if len(prompts[0].spans) == 1:      # Qwen-VL: one span between the frame's prefix and suffix
        positions = list(range(n_prefix, len(ids) - n_suffix))
    else:                               # images first (LLaVA-OneVision): the image tokens and the text's own tokens
        n_text = len(tok(item.text, add_special_tokens=False)["input_ids"])
        positions = [i for i, t in enumerate(ids) if t == image_id] + list(range(len(ids) - n_suffix - n_text,
                                                                                 len(ids) - n_suffix))
        assert tok.decode([ids[i] for i in positions[-n_text:]]) == item.text
    expected = hidden[positions].mean(dim=0)
    assert image_id in [ids[i] for i in positions]
    np.testing.assert_allclose(emb.encode([item])[0], expected.numpy(), atol=1e-5)
    # the instruction does influence the content tokens through attention, but is not averaged
    other = emb.encode([EmbedItem(item.text, item.image_path, "A different instruction.")])[0]
    assert np.abs(other - expected.numpy()).max() > 1e-4


def test_image_size_resizes_every_image_to_a_square_before_the_processor(tiny_family_model, tmp_path):
    """UniME-V2 §4.1 / VLM2Vec ``process_image``: with ``image_size`` an image embeds as its resized copy does
    without it, and a 112-px image resized to 56 px gives the processor fewer pixels (another embedding)."""
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (112, 112, 3), dtype=np.uint8)).save(tmp_path / "big.png")
    with Image.open(tmp_path / "big.png") as image:
        image.resize((56, 56), Image.Resampling.BICUBIC).save(tmp_path / "small.png")
    big, small = EmbedItem("what is it", str(tmp_path / "big.png")), EmbedItem("what is it", str(tmp_path / "small.png"))
    sized, plain = embedder(tiny_family_model, EmbeddingMode(image_size=56)), embedder(tiny_family_model, EmbeddingMode())
    np.testing.assert_allclose(sized.encode([big]), plain.encode([small]), atol=1e-5)
    assert np.abs(plain.encode([big]) - plain.encode([small])).max() > 1e-3
    assert EmbeddingMode(image_size=56).as_dict() != EmbeddingMode().as_dict()   # a cache key of its own


def test_bidirectional_mode_lets_late_tokens_change_early_content(tiny_family_model):
    a, b = EmbedItem("red circle left large"), EmbedItem("red circle left small")
    for mode, should_differ in [(EmbeddingMode(pooling="mean", attention="bidirectional", normalize=False), True),
                                (EmbeddingMode(pooling="mean", attention="causal", normalize=False), False)]:
        emb = embedder(tiny_family_model, mode)
        (pa, ba), (_, bb) = emb.tokenize([a]), emb.tokenize([b])
        with torch.no_grad():
            ha, hb = emb.model(**ba).last_hidden_state[0], emb.model(**bb).last_hidden_state[0]
        first_content = len(emb.processor.tokenizer(pa[0].prefix, add_special_tokens=False)["input_ids"])
        moved = (ha[first_content] - hb[first_content]).abs().max().item()
        assert (moved > 1e-6) == should_differ


def test_the_prompt_is_the_chat_templates_rendering_split_at_the_content(tiny_qwen2vl):
    processor = load_processor(tiny_qwen2vl)
    style = PromptStyle(compression="In one word:")
    p = build_prompt(processor, style, "text", True, "Instr.")
    rendered = processor.apply_chat_template(
        [{"role": "system", "content": style.system},
         {"role": "user", "content": [{"type": "text", "text": "Instr.\n"}, {"type": "image"},
                                      {"type": "text", "text": "text"}, {"type": "text", "text": "\nIn one word:"}]}],
        tokenize=False, add_generation_prompt=True)
    assert p.text == rendered
    assert p.prefix.endswith("Instr.\n") and p.content == "<|vision_start|><|image_pad|><|vision_end|>text"
    assert p.suffix.startswith("\nIn one word:<|im_end|>")
    with pytest.raises(ValueError, match="needs text or an image"):
        build_prompt(processor, style, None, False)


def test_a_template_that_renders_images_first_gives_two_content_pieces(tiny_qwen2vl):
    """A template rendering the image before every text part (LLaVA-OneVision's) puts the instruction between
    the image and the text: the content is two pieces, and the mask leaves the instruction out."""
    processor = load_processor(tiny_qwen2vl)
    processor.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{% if m['content'] is string %}{{ m['content'] }}"
        "{% else %}{% for c in m['content'] if c['type'] == 'image' %}<|image_pad|>{% endfor %}"
        "{% for c in m['content'] if c['type'] == 'text' %}{{ '\\n' + c['text'] }}{% endfor %}{% endif %}<|im_end|>\n"
        "{% endfor %}<|im_start|>assistant\n")
    prompt = build_prompt(processor, PromptStyle(), "a red circle", True, "Find it.", separator="")
    assert [piece for piece, is_content in prompt.pieces if is_content] == ["<|image_pad|>", "a red circle"]
    assert "\nFind it.\n" in [piece for piece, is_content in prompt.pieces if not is_content][1]
    image = Image.new("RGB", (56, 56), "red")
    batch = processor(text=[prompt.text], images=[image], return_tensors="pt")
    mask = content_mask([prompt], batch["input_ids"], batch["attention_mask"], processor.tokenizer, "<|image_pad|>")
    tokens = processor.tokenizer.convert_ids_to_tokens(batch["input_ids"][0][mask[0]].tolist())
    assert tokens.count("<|image_pad|>") == 4 and "".join(tokens[4:]).replace("Ġ", " ") == "a red circle"
    processor.chat_template = processor.chat_template.replace("{% endfor %}{% endif %}", "{{ m['content'][-1]['text'] }}{% endfor %}{% endif %}")
    with pytest.raises(ValueError, match="renders the item's text 3 times"):
        build_prompt(processor, PromptStyle(), "text", True, "Other.")


def test_content_mask_rejects_merged_boundaries(tiny_qwen2vl):
    emb = embedder(tiny_qwen2vl, EmbeddingMode())
    prompts, batch = emb.tokenize([EmbedItem("hello")])
    broken = batch["input_ids"].clone()
    broken[0, 0] = broken[0, 1]
    with pytest.raises(ValueError, match="boundary"):
        content_mask(prompts, broken, batch["attention_mask"], emb.processor.tokenizer, emb.processor.image_token)


def test_bad_mode_and_empty_input(tiny_qwen2vl):
    with pytest.raises(ValueError, match="pooling must be one of"):
        EmbeddingMode(pooling="cls")
    with pytest.raises(ValueError, match="nothing to encode"):
        embedder(tiny_qwen2vl, EmbeddingMode()).encode([])


def test_base_plus_adapter_changes_embeddings_and_loads_from_disk(tiny_qwen2vl, items, tmp_path):
    from peft import LoraConfig, get_peft_model

    from uniembed.model.loading import load_for_embedding

    base = load_for_embedding(tiny_qwen2vl)
    lora = get_peft_model(base, LoraConfig(r=4, target_modules=r".*language_model\.layers\.\d+\.self_attn\.(q|v)_proj",
                                           init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    plain = embedder(tiny_qwen2vl, EmbeddingMode()).encode(items)
    adapted = Embedder.from_pretrained(tiny_qwen2vl, tmp_path / "adapter", EmbeddingMode(), device="cpu")
    with_adapter = adapted.encode(items)
    assert np.abs(with_adapter - plain).max() > 1e-3
    direct = Embedder(lora, adapted.processor, EmbeddingMode(), device="cpu").encode(items)
    np.testing.assert_allclose(with_adapter, direct, atol=1e-5)
