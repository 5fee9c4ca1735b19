"""The object embedder (ObjEmbed §3.1): every proposal of an image in one forward pass, as two tokens of the prompt."""
import numpy as np
import pytest
import torch

from uniembed.data.synthetic.scenes import draw_scene, proposals
from uniembed.embed.objects import GLOBAL, NEW_TOKENS, OBJECT, ObjectEmbedder, image_prompt


@pytest.fixture(scope="module")
def embedder(tiny_qwen2vl):
    return ObjectEmbedder.from_base(tiny_qwen2vl, roi_size=3, seed=0, device="cpu").eval()


@pytest.fixture(scope="module")
def scenes():
    rng = np.random.default_rng(0)
    drawn = [draw_scene(rng) for _ in range(3)]
    return drawn, [proposals(np.array([o.box for o in s.objects]), rng, count) for s, count in zip(drawn, (4, 7, 1))]


def test_the_prompt_holds_two_object_tokens_per_proposal_and_two_global_tokens():
    text = image_prompt(3)
    assert text.count(OBJECT) == 6 and text.count(GLOBAL) == 2
    assert "Object 3: <object><object>." in text and text.index("coarse") < text.index("Object 1") < text.index("detailed")


def test_outputs_per_proposal_and_per_image_and_one_tower_pass(embedder, scenes):
    images, boxes = scenes
    calls = []
    hook = embedder.family.vision_tower(embedder.model).register_forward_hook(lambda *args: calls.append(1))
    try:
        with torch.no_grad():
            out = embedder.forward_images(embedder.inputs.images([s.image for s in images], boxes))
    finally:
        hook.remove()
    assert len(calls) == 1                        # the decoder reused the tower's outputs
    assert out.counts == [4, 7, 1] and out.objects.shape == (12, 64) and out.iou_logits.shape == (12,)
    assert out.coarse.shape == out.detailed.shape == (3, 64)
    assert all(embedder.processor.tokenizer.convert_tokens_to_ids(t) == embedder.ids[t] for t in NEW_TOKENS)


def test_an_image_gives_the_same_outputs_alone_and_in_a_batch(embedder, scenes):
    images, boxes = scenes
    with torch.no_grad():
        batch = embedder.forward_images(embedder.inputs.images([s.image for s in images], boxes))
        alone = embedder.forward_images(embedder.inputs.images([images[1].image], [boxes[1]]))
    assert torch.allclose(batch.objects[4:11], alone.objects, atol=1e-4)
    assert torch.allclose(batch.iou_logits[4:11], alone.iou_logits, atol=1e-4)
    assert torch.allclose(batch.detailed[1], alone.detailed[0], atol=1e-4)


def test_a_box_reaches_its_own_object_and_later_tokens_only(embedder, scenes):
    """Causal attention (the released model's): moving proposal 3 of 4 changes objects 3 and 4 and the detailed
    global token, never objects 1-2 or the coarse token, which come before it in the prompt."""
    images, boxes = scenes
    moved = boxes[0].copy()
    moved[2] = [5.0, 5.0, 40.0, 40.0]
    with torch.no_grad():
        a = embedder.forward_images(embedder.inputs.images([images[0].image], [boxes[0]]))
        b = embedder.forward_images(embedder.inputs.images([images[0].image], [moved]))
    assert torch.allclose(a.objects[:2], b.objects[:2], atol=1e-5) and torch.allclose(a.coarse, b.coarse, atol=1e-5)
    assert not torch.allclose(a.objects[2], b.objects[2]) and not torch.allclose(a.objects[3], b.objects[3])
    assert not torch.allclose(a.detailed, b.detailed)


def test_texts_embed_at_their_marker_and_save_load_keeps_everything(embedder, scenes, tmp_path):
    images, boxes = scenes
    texts = ["the red square", "a small blue circle at the top left"]
    with torch.no_grad():
        local, glob = (embedder.forward_texts(embedder.inputs.texts(texts, local)) for local in (True, False))
        out = embedder.forward_images(embedder.inputs.images([images[0].image], [boxes[0]]))
    assert local.shape == glob.shape == (2, 64) and not torch.allclose(local, glob)
    embedder.save_pretrained(tmp_path)
    loaded = ObjectEmbedder.from_pretrained(tmp_path, device="cpu").eval()
    with torch.no_grad():
        again = loaded.forward_images(loaded.inputs.images([images[0].image], [boxes[0]]))
        local_again = loaded.forward_texts(loaded.inputs.texts(texts, True))
    assert torch.allclose(out.objects, again.objects, atol=1e-5) and torch.allclose(local, local_again, atol=1e-5)


def test_a_model_without_the_tokens_is_refused(tiny_qwen2vl):
    from uniembed.model.loading import load_for_embedding
    from uniembed.model.object_heads import ObjectHeads, ObjectHeadsConfig
    from uniembed.model.processor import load_processor

    with pytest.raises(ValueError, match="lacks"):
        ObjectEmbedder(load_for_embedding(tiny_qwen2vl), ObjectHeads(ObjectHeadsConfig(64, (32, 64), (14, 28))),
                       load_processor(tiny_qwen2vl))
