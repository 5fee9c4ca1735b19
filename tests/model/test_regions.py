"""RoIAlign and the box position embedding against direct, scalar transcriptions of their definitions (torchvision's
RoIAlign CPU kernel with aligned=False and a fixed sampling ratio; ObjEmbed's gen_sineembed_for_position)."""
import math

import pytest
import torch

from uniembed.model.regions import box_position_embedding, roi_align, roi_align_torch


def _bilinear(f, y, x):
    height, width = len(f), len(f[0])
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y0, x0 = int(y), int(x)
    if y0 >= height - 1:
        y0 = y1 = height - 1
        y = float(y0)
    else:
        y1 = y0 + 1
    if x0 >= width - 1:
        x0 = x1 = width - 1
        x = float(x0)
    else:
        x1 = x0 + 1
    ly, lx = y - y0, x - x0
    return ((1 - ly) * (1 - lx) * f[y0][x0] + (1 - ly) * lx * f[y0][x1] + ly * (1 - lx) * f[y1][x0]
            + ly * lx * f[y1][x1])


def _roi_align_scalar(f, box, out, scale, ratio):
    x1, y1, x2, y2 = (v * scale for v in box)
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    bw, bh = w / out, h / out
    result = [[0.0] * out for _ in range(out)]
    for py in range(out):
        for px in range(out):
            total = 0.0
            for iy in range(ratio):
                for ix in range(ratio):
                    total += _bilinear(f, y1 + py * bh + (iy + 0.5) * bh / ratio, x1 + px * bw + (ix + 0.5) * bw / ratio)
            result[py][px] = total / ratio ** 2
    return result


@pytest.mark.parametrize("scale, ratio", [(1.0, 2), (0.25, 2), (0.5, 3)])
def test_roi_align_equals_the_kernels_definition_inside_on_the_border_and_outside(scale, ratio):
    torch.manual_seed(0)
    features = torch.randn(3, 6, 7, dtype=torch.float64)
    boxes = torch.tensor([[2.0, 3.0, 17.0, 11.0], [0.0, 0.0, 28.0, 24.0], [20.0, 18.0, 40.0, 30.0],   # reaches past
                          [5.0, 5.0, 5.5, 5.2], [-6.0, -3.0, 4.0, 2.0]], dtype=torch.float64)     # tiny; off the map
    got = roi_align_torch(features, boxes, 4, scale, ratio)
    assert got.shape == (5, 3, 4, 4)
    for k, box in enumerate(boxes.tolist()):
        for c in range(3):
            expected = _roi_align_scalar(features[c].tolist(), box, 4, scale, ratio)
            assert got[k, c].flatten().tolist() == pytest.approx(sum(expected, []), abs=1e-12)
    assert torch.allclose(roi_align(features, boxes, 4, scale, ratio), got)   # torchvision, when installed, agrees


def test_roi_align_of_a_constant_map_is_that_constant_and_gradients_reach_the_features():
    features = torch.full((2, 5, 5), 3.0, requires_grad=True)
    out = roi_align_torch(features, torch.tensor([[4.0, 4.0, 12.0, 16.0]]), 7, 0.25)
    assert torch.allclose(out, torch.full_like(out, 3.0))
    out.sum().backward()
    assert features.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="sampling_ratio"):
        roi_align_torch(features, torch.zeros(1, 4), 7, 1.0, sampling_ratio=-1)


def test_box_position_embedding_is_the_sine_embedding_of_cy_cx_w_h():
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]], dtype=torch.float64)
    dim, width, height = 16, 100.0, 80.0
    got = box_position_embedding(boxes, width, height, dim)[0].tolist()
    coords = [40.0 / height, 20.0 / width, 20.0 / width, 40.0 / height]   # cy, cx, w, h
    quarter = dim // 4
    expected = []
    for value in coords:
        angles = [value * 2 * math.pi / 10000 ** (2 * (i // 2) / quarter) for i in range(quarter)]
        for i in range(0, quarter, 2):
            expected += [math.sin(angles[i]), math.cos(angles[i + 1])]
    assert got == pytest.approx(expected, abs=1e-12)
    with pytest.raises(ValueError, match="multiple of 8"):
        box_position_embedding(boxes, width, height, 12)
