"""ObjEmbed's object tokens (seed 002 §3.1): the heads' inputs against a direct computation, their save / load, and
the family's feature maps in the image's layout."""
import math

import numpy as np
import pytest
import torch

from uniembed.model.object_heads import INITIAL_BIAS, INITIAL_LOG_SCALE, ObjectHeads, ObjectHeadsConfig
from uniembed.model.regions import box_position_embedding, roi_align_torch

CONFIG = ObjectHeadsConfig(hidden_size=16, level_channels=(4, 8), level_strides=(14, 28), roi_size=3)


def test_object_and_iou_tokens_are_roi_features_and_a_learned_vector_plus_the_box_embedding():
    torch.manual_seed(0)
    heads = ObjectHeads(CONFIG)
    torch.nn.init.normal_(heads.position_projector[2].weight)   # as after training: the position path counts
    maps = [torch.randn(4, 8, 8), torch.randn(8, 4, 4)]
    boxes = torch.tensor([[10.0, 20.0, 50.0, 60.0], [0.0, 0.0, 112.0, 112.0]])
    tokens = heads.object_inputs(maps, boxes, (112, 112))
    regions = torch.cat([roi_align_torch(maps[0], boxes, 3, 1 / 14), roi_align_torch(maps[1], boxes, 3, 1 / 28)], 1)
    merged = regions.permute(0, 2, 3, 1) @ heads.merge.weight.T + heads.merge.bias
    features = heads.object_projector(merged.reshape(2, -1))
    position = heads.position_projector(box_position_embedding(boxes, 112, 112, 16))
    assert tokens.shape == (2, 2, 16)
    assert torch.allclose(tokens[:, 0], features + position, atol=1e-5)
    assert torch.allclose(tokens[:, 1], heads.iou_token + position, atol=1e-6)


def test_the_position_path_starts_at_zero_and_the_scores_at_scale_20_bias_minus_3_ln_99():
    heads = ObjectHeads(CONFIG)
    assert torch.equal(heads.position_projector(torch.randn(3, 16)), torch.zeros(3, 16))
    assert math.isclose(heads.object_log_scale.exp().item(), 20.0, rel_tol=1e-6)
    assert math.isclose(heads.image_bias.item(), -3 * math.log(99), rel_tol=1e-6)
    assert (INITIAL_LOG_SCALE, INITIAL_BIAS) == (math.log(20.0), -3 * math.log(99.0))
    assert heads.iou_logits(torch.randn(5, 16)).shape == (5,)


def test_heads_round_trip_through_their_files(tmp_path):
    heads = ObjectHeads(CONFIG)
    heads.save(tmp_path)
    loaded = ObjectHeads.load(tmp_path)
    assert loaded.config == CONFIG
    for (name, a), (_, b) in zip(heads.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), name
    with pytest.raises(FileNotFoundError, match="object_heads.json"):
        ObjectHeads.load(tmp_path / "elsewhere")
    with pytest.raises(ValueError, match="one stride per feature level"):
        ObjectHeads(ObjectHeadsConfig(16, (4,), (14, 28)))


def test_qwen2vl_feature_maps_lay_patches_out_as_the_image(tiny_qwen2vl):
    """The processor orders patches in 2 x 2 merge blocks; the patch-level map must put each back where it sits in
    the image: read the pixels themselves (pixel_values) through the same layout and compare with the image."""
    from uniembed.model.families import family_of
    from uniembed.model.loading import load_for_embedding
    from uniembed.model.processor import load_processor

    processor = load_processor(tiny_qwen2vl)
    model = load_for_embedding(tiny_qwen2vl)
    family = family_of(model)
    pixels = np.zeros((112, 84, 3), dtype=np.uint8)
    pixels[:56, :, 0] = 255          # top half red
    pixels[:, 42:, 2] = 255          # right half blue
    from PIL import Image
    batch = processor.image_processor(images=[Image.fromarray(pixels)], return_tensors="pt")
    grid = batch["image_grid_thw"]
    (t, h, w), = grid.tolist()
    assert (h, w) == (8, 6)
    channels, strides = family.region_levels(model.config)
    assert strides == (14, 28) and channels[1] == model.config.get_text_config().hidden_size
    _, maps, sizes = family.region_maps(model, batch["pixel_values"], grid)
    assert sizes == [(84, 112)] and [m.shape[1:] for m in maps[0]] == [(8, 6), (4, 3)]
    patch = batch["pixel_values"].reshape(h // 2, w // 2, 2, 2, 3, 2, 14, 14)   # the layout region_maps reads
    red = patch[..., 0, :, :, :].mean((-1, -2, -3)).permute(0, 2, 1, 3).reshape(h, w)
    blue = patch[..., 2, :, :, :].mean((-1, -2, -3)).permute(0, 2, 1, 3).reshape(h, w)
    assert (red[:4] > red[4:].max()).all() and (blue[:, 3:] > blue[:, :3].max()).all()
    # the patch-level map in that layout: merging each 2 x 2 block of it, row by row, gives the merged map
    patches, merged = maps[0]
    blocks = patches.reshape(-1, 4, 2, 3, 2).permute(1, 3, 2, 4, 0).reshape(12, 4, -1)   # block, (r, c), channel
    with torch.no_grad():
        remerged = family.vision_tower(model).merger(blocks.reshape(48, -1))
    assert torch.allclose(remerged.T.reshape(merged.shape), merged, atol=1e-5)
