"""Vision pretraining of the tiny tower: the CLIP loss against a direct computation, fresh renderings that are
never a data-set image, probes that tell a random tower from a trained one, and the stage's output."""
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from uniembed.config import compose_config
from uniembed.model.families import family_of
from uniembed.model.loading import load_for_generation
from uniembed.model.processor import load_processor
from uniembed.vision.pretrain import CaptionEncoder, clip_loss, pretrain_tower
from uniembed.vision.probe import probe_accuracies
from uniembed.vision.renderings import draw_renderings, rendering_stream
from uniembed.vision.settings import VisionPretrainSettings

ROOT = Path(__file__).resolve().parents[2]


def _direct_clip(image, text, scale, captions):
    """1/2 (CE rows + CE columns) of scale * cos, same-caption off-diagonal pairs left out, by loops in float64."""
    n = len(image)
    unit = lambda v: [x / math.sqrt(sum(y * y for y in v)) for x in v]  # noqa: E731
    img, txt = [unit(v) for v in image.tolist()], [unit(v) for v in text.tolist()]
    s = [[scale * sum(a * b for a, b in zip(img[i], txt[j])) for j in range(n)] for i in range(n)]
    keep = [[i == j or captions[i] != captions[j] for j in range(n)] for i in range(n)]

    def ce(row, i, mask):
        z = sum(math.exp(x) for x, k in zip(row, mask) if k)
        return -(row[i] - math.log(z))
    rows = sum(ce(s[i], i, keep[i]) for i in range(n)) / n
    cols = sum(ce([s[j][i] for j in range(n)], i, [keep[j][i] for j in range(n)]) for i in range(n)) / n
    return 0.5 * (rows + cols)


def test_clip_loss_equals_a_direct_computation_with_same_captions_masked():
    g = torch.Generator().manual_seed(0)
    image, text = torch.randn(5, 6, generator=g, dtype=torch.float64), torch.randn(5, 6, generator=g, dtype=torch.float64)
    captions = ["a", "b", "a", "c", "d"]
    scale = torch.tensor(math.log(1 / 0.07), dtype=torch.float64)
    got = clip_loss(image, text, scale, captions).item()
    assert got == pytest.approx(_direct_clip(image, text, 1 / 0.07, captions), rel=1e-10)
    unmasked = clip_loss(image, text, scale).item()
    assert unmasked == pytest.approx(_direct_clip(image, text, 1 / 0.07, list("abcde")), rel=1e-10) and unmasked != got


def test_caption_encoder_is_a_mean_of_word_embeddings():
    encoder = CaptionEncoder(4).double()
    words = "a large red circle on the left".split()
    expected = encoder.embed.weight[[encoder.vocab[w] for w in words]].mean(0)
    assert torch.allclose(encoder(["a large red circle on the left"])[0], expected)


def test_renderings_are_distinct_objects_crops_name_colour_and_shape_only():
    batch = draw_renderings(rendering_stream(0, "t"), 64, crop_share=0.5)
    assert len({r.obj for r in batch}) == 64 and {r.image.size for r in batch} == {(56, 56)}
    crops = [r for r in batch if r.is_crop]
    assert 15 < len(crops) < 50
    assert all(r.caption.split()[-1] == r.obj.shape and r.obj.position not in r.caption for r in crops)
    assert all(r.obj.position.split()[0] in r.caption for r in batch if not r.is_crop)
    again = draw_renderings(rendering_stream(0, "t"), 64, crop_share=0.5)
    assert all(np.array_equal(np.asarray(a.image), np.asarray(b.image)) for a, b in zip(batch, again))  # seeded


def test_no_fresh_rendering_is_a_stored_data_set_image(small_world):
    stored = {np.asarray(Image.open(p).convert("RGB")).tobytes() for p in Path(small_world["root"]).rglob("*.png")}
    assert len(stored) > 100
    fresh = [r.image for purpose in ("pretrain", "probe_train", "probe_test")
             for r in draw_renderings(rendering_stream(0, purpose), 300, crop_share=0.25)]
    assert not any(np.asarray(image).tobytes() in stored for image in fresh)


def test_a_short_pretraining_teaches_the_tower_shapes_a_random_one_cannot_read(tiny_qwen2vl):
    model = load_for_generation(tiny_qwen2vl)
    images = load_processor(tiny_qwen2vl).image_processor
    encoder = family_of(model).image_encoder(model, images)
    assert encoder.module is model.model.visual
    before = probe_accuracies(encoder, n_train=400, n_test=200, steps=200)
    trained = pretrain_tower(encoder, VisionPretrainSettings(steps=400, batch_size=32, lr=3e-3, warmup_steps=10),
                             progress=False)
    after = probe_accuracies(encoder, n_train=400, n_test=200, steps=200)
    assert trained["history"][-1]["loss"] < 0.5 * trained["history"][0]["loss"]
    mean = lambda accuracies: sum(accuracies.values()) / len(accuracies)  # noqa: E731
    # the built tower cannot read shapes; 400 steps already move every attribute (the DAG's 3,000 reach >= 0.95:
    # tests/integration/test_embedded_default.py)
    assert before["shape"] < 0.6 and after["shape"] > before["shape"] + 0.08, (before, after)
    assert mean(after) > mean(before) + 0.08 and all(after[a] >= before[a] - 0.02 for a in after), (before, after)


def test_the_stage_trains_the_tower_only_and_saves_a_verified_model(tiny_qwen2vl, tmp_path):
    from uniembed.stages import pretrain_vision

    cfg = compose_config([f"model.path={tiny_qwen2vl}", "+model.vision_pretrain={steps: 5, batch_size: 8, "
                          "probe_train: 40, probe_test: 20}", f"stage.model_dir={tiny_qwen2vl}",
                          f"stage.out_dir={tmp_path / 'vision'}", "stage.progress=false"], ROOT / "config")
    summary = pretrain_vision.run(cfg)
    out = tmp_path / "vision"
    assert json.loads((out / "vision_pretrain.json").read_text())["probe_after"] == summary["probe_after"]
    assert (out / "artifact_manifest.json").is_file()
    old, new = load_file(str(Path(tiny_qwen2vl) / "model.safetensors")), load_file(str(out / "model.safetensors"))
    changed = {k for k in old if not torch.equal(old[k], new[k])}
    assert changed and all(k.startswith("visual.") for k in changed)   # the language model is untouched
    assert load_for_generation(out).config.model_type == "qwen2_vl"
