"""Region features for object embeddings (ObjEmbed, seed 002 §3.1): RoIAlign over a vision feature map and the
sine position embedding of a box.

``roi_align`` is torchvision's ``ops.roi_align`` (Mask R-CNN's RoIAlign, ``aligned=False``) when torchvision is
installed, and otherwise the same computation in plain torch: each box, scaled by ``spatial_scale`` into feature
coordinates (at least one cell wide and high), is cut into ``output_size`` x ``output_size`` bins, each bin averages
``sampling_ratio`` x ``sampling_ratio`` bilinear samples at the sub-bin centres (a sample more than one cell outside
the map reads 0; coordinates are clamped to the map otherwise). The CPU build of torch that this project pins has no
matching torchvision, hence the fallback; a fixed ``sampling_ratio`` (torchvision's adaptive default is -1) makes both
agree exactly.

``box_position_embedding`` follows the released code (``gen_sineembed_for_position``): the box as (cx, cy, w, h)
normalised to [0, 1], each coordinate a ``dim / 4`` sine-cosine embedding with temperature 10,000, concatenated in
the order (cy, cx, w, h). ``box_iou`` is the IoU of every pair of two box lists (eq. 2-3's overlap).
"""
from __future__ import annotations

import math

import torch


def _bilinear(feature: torch.Tensor, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``feature`` [C, H, W] at real coordinates ``y``, ``x`` (same shape S): [C, *S], torchvision's border rules."""
    height, width = feature.shape[-2:]
    outside = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)
    y, x = y.clamp(min=0), x.clamp(min=0)
    y0, x0 = y.floor().long().clamp(max=height - 1), x.floor().long().clamp(max=width - 1)
    y1, x1 = (y0 + 1).clamp(max=height - 1), (x0 + 1).clamp(max=width - 1)
    y = torch.where(y0 >= height - 1, y0.to(y.dtype), y)
    x = torch.where(x0 >= width - 1, x0.to(x.dtype), x)
    ly, lx = y - y0, x - x0
    hy, hx = 1 - ly, 1 - lx
    value = (feature[:, y0, x0] * (hy * hx) + feature[:, y0, x1] * (hy * lx)
             + feature[:, y1, x0] * (ly * hx) + feature[:, y1, x1] * (ly * lx))
    return value * (~outside)


def roi_align_torch(features: torch.Tensor, boxes: torch.Tensor, output_size: int, spatial_scale: float,
                    sampling_ratio: int = 2) -> torch.Tensor:
    """RoIAlign of ``boxes`` [K, 4] (x1, y1, x2, y2, image pixels) on one map ``features`` [C, H, W]:
    [K, C, output_size, output_size]."""
    if sampling_ratio < 1:
        raise ValueError(f"sampling_ratio must be at least 1 here (torchvision's adaptive -1 is not), got {sampling_ratio}")
    scaled = boxes.to(features.dtype) * spatial_scale
    start = scaled[:, :2]                                            # (x1, y1)
    size = (scaled[:, 2:] - scaled[:, :2]).clamp(min=1.0)           # (w, h), at least one cell
    bin_size = size / output_size
    steps = (torch.arange(output_size * sampling_ratio, dtype=features.dtype, device=features.device) + 0.5) / sampling_ratio
    xs = start[:, 0, None] + steps[None, :] * bin_size[:, 0, None]   # [K, out * s]
    ys = start[:, 1, None] + steps[None, :] * bin_size[:, 1, None]
    n = output_size * sampling_ratio
    grid_y, grid_x = ys[:, :, None].expand(-1, n, n), xs[:, None, :].expand(-1, n, n)
    samples = _bilinear(features, grid_y, grid_x).permute(1, 0, 2, 3)   # [K, C, n, n]
    k, c = samples.shape[:2]
    return samples.reshape(k, c, output_size, sampling_ratio, output_size, sampling_ratio).mean(dim=(3, 5))


def roi_align(features: torch.Tensor, boxes: torch.Tensor, output_size: int, spatial_scale: float,
              sampling_ratio: int = 2) -> torch.Tensor:
    """torchvision's RoIAlign when it is installed, else :func:`roi_align_torch` (same numbers)."""
    try:
        from torchvision.ops import roi_align as tv_roi_align
    except ImportError:
        return roi_align_torch(features, boxes, output_size, spatial_scale, sampling_ratio)
    return tv_roi_align(features[None], [boxes.to(features.dtype)], output_size, spatial_scale, sampling_ratio,
                        aligned=False)


def box_position_embedding(boxes: torch.Tensor, width: float, height: float, dim: int,
                           temperature: float = 10_000.0) -> torch.Tensor:
    """Sine embedding of ``boxes`` [K, 4] (x1, y1, x2, y2 in an image of ``width`` x ``height``): [K, dim]."""
    if dim % 8:
        raise ValueError(f"dim must be a multiple of 8 (4 coordinates, sine and cosine pairs), got {dim}")
    x1, y1, x2, y2 = boxes.unbind(-1)
    coords = torch.stack([(y1 + y2) / 2 / height, (x1 + x2) / 2 / width, (x2 - x1) / width, (y2 - y1) / height], -1)
    quarter = dim // 4
    freq = temperature ** (2 * (torch.arange(quarter, device=boxes.device) // 2) / quarter)
    angles = coords[..., None] * 2 * math.pi / freq                  # [K, 4, quarter]
    embedded = torch.stack([angles[..., 0::2].sin(), angles[..., 1::2].cos()], -1).flatten(-2)
    return embedded.flatten(-2)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """IoU of every box of ``a`` [N, 4] with every box of ``b`` [M, 4], both (x1, y1, x2, y2): [N, M]."""
    area = lambda x: (x[:, 2] - x[:, 0]).clamp(min=0) * (x[:, 3] - x[:, 1]).clamp(min=0)  # noqa: E731
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (bottom_right - top_left).clamp(min=0).prod(-1)
    union = area(a)[:, None] + area(b)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(inter))
