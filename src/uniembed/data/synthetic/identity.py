"""Identities in the shapes world (VisME, supplement §E): objects the attribute words cannot tell apart.

An identity is a large shape of one colour carrying a **mark**: a 3 x 3 pattern of dark dots painted at the shape's
centre, which no caption names. Identities come in look-alike groups: every identity of a group has the same shape,
colour and size and differs from the others only in its mark, so a model that keeps only what the words say cannot
tell them apart (VisME's "which object, not what kind").

Each identity is drawn several ways (:data:`VIEWS`): another position (pose), scale, a colour shift, another
background, part of it occluded by a grey bar, and an edit (its colour replaced, the mark kept). The four meta-tasks
of VisME Table 6 are built from these views by :mod:`uniembed.data.synthetic.identity_tasks`.
"""
from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

from .world import COLORS, IMAGE_SIZE, SHAPES, _outline, seeded_rng

MARK_CELLS = 9            # a 3 x 3 grid
MARK_DOTS = (3, 6)        # dots per mark, inclusive: never empty, never full, so every mark is visibly a pattern
IDENTITY_RADIUS = 17      # large: the mark needs room (the world's large objects have radius 14)
VIEWS = ("plain", "shifted", "scaled", "tinted", "background", "occluded", "edited")
#: Every mark: the 3 x 3 patterns with 3 to 6 dots (420 of them), in a fixed order.
ALL_MARKS = tuple(cells for n in range(MARK_DOTS[0], MARK_DOTS[1] + 1)
                  for cells in itertools.combinations(range(MARK_CELLS), n))


@dataclass(frozen=True)
class Identity:
    """One individual: its look-alike group's shape and colour, and its own mark (the grid cells with a dot)."""
    identity_id: str
    shape: str
    color: str
    mark: tuple[int, ...]

    @property
    def group(self) -> tuple[str, str]:
        return self.shape, self.color

    @property
    def key(self) -> tuple[str, str, tuple[int, ...]]:
        """What makes the individual: its group and its mark (its id is only its place in a draw)."""
        return self.shape, self.color, self.mark


def draw_identities(seed: int, groups: int, per_group: int, exclude: Collection[tuple] = ()) -> list[Identity]:
    """``groups`` look-alike groups (distinct shape-colour pairs) of ``per_group`` identities with distinct marks,
    none of them in ``exclude`` (:meth:`Identity.key` of identities held out, e.g. the evaluation's)."""
    pairs = list(itertools.product(SHAPES, COLORS))
    if not 1 <= groups <= len(pairs) or not 2 <= per_group <= len(ALL_MARKS):
        raise ValueError(f"groups must be in 1..{len(pairs)} and per_group in 2..{len(ALL_MARKS)}, "
                         f"got {groups} and {per_group}")
    rng, exclude = seeded_rng(seed, "identity", "draw"), set(exclude)
    out = []
    for g in rng.choice(len(pairs), size=groups, replace=False):
        shape, color = pairs[int(g)]
        marks = [m for m in ALL_MARKS if (shape, color, m) not in exclude]
        if len(marks) < per_group:
            raise ValueError(f"only {len(marks)} marks of the {shape}-{color} group are not held out; "
                             f"{per_group} asked")
        for k, m in enumerate(rng.choice(len(marks), size=per_group, replace=False)):
            out.append(Identity(f"{shape}-{color}-{k:03d}", shape, color, marks[int(m)]))
    return out


def _centre(shape: str, cx: float, cy: float, r: float) -> tuple[float, float]:
    """Where the mark goes: the shape's incentre (a triangle's sits below its centre)."""
    return (cx, cy + 0.227 * r) if shape == "triangle" else (cx, cy)


def render_identity(identity: Identity, view: str, rng: np.random.Generator, *, edit_color: str | None = None,
                    canvas: Image.Image | None = None, at: tuple[float, float] | None = None) -> Image.Image:
    """``identity`` drawn in ``view`` (one of :data:`VIEWS`; ``edited`` needs ``edit_color``), on a fresh canvas or
    on ``canvas`` at ``at`` (a scene of several identities). Every view keeps the mark."""
    if view not in VIEWS:
        raise ValueError(f"unknown view {view!r}; expected one of {VIEWS}")
    if view == "edited":
        if edit_color is None or edit_color == identity.color:
            raise ValueError("an edited view needs an edit_color other than the identity's own")
        identity = replace(identity, color=edit_color)
    shade = int(rng.integers(25, 66)) if view != "background" else int(rng.integers(120, 200))
    image = canvas or Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (shade,) * 3)
    draw = ImageDraw.Draw(image)
    jitter = 8 if view == "shifted" else 1
    cx, cy = at or (IMAGE_SIZE / 2, IMAGE_SIZE / 2)
    cx, cy = cx + int(rng.integers(-jitter, jitter + 1)), cy + int(rng.integers(-jitter, jitter + 1))
    r = IDENTITY_RADIUS * (float(rng.uniform(0.7, 0.8)) if view == "scaled" else 1.0) if at is None else 12.0
    shift = 35 if view == "tinted" else 6
    fill = tuple(int(v) for v in np.clip(np.array(COLORS[identity.color]) + rng.integers(-shift, shift + 1, size=3),
                                         0, 255))
    if identity.shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon(_outline(identity.shape, cx, cy, r), fill=fill)
    mx, my = _centre(identity.shape, cx, cy, r)
    step, dot = 0.28 * r, max(1.0, 0.09 * r)
    for cell in identity.mark:
        x, y = mx + (cell % 3 - 1) * step, my + (cell // 3 - 1) * step
        draw.rectangle((x - dot, y - dot, x + dot, y + dot), fill=(15, 15, 15))
    if view == "occluded":   # a grey bar over one side, never over the mark's centre row
        side = int(rng.integers(4))
        bar = {0: (0, 0, IMAGE_SIZE, cy - 0.55 * r), 1: (0, cy + 0.55 * r, IMAGE_SIZE, IMAGE_SIZE),
               2: (0, 0, cx - 0.55 * r, IMAGE_SIZE), 3: (cx + 0.55 * r, 0, IMAGE_SIZE, IMAGE_SIZE)}[side]
        draw.rectangle(bar, fill=(128, 128, 128))
    return image
