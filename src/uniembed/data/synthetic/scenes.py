"""Multi-object scenes of the shapes world with boxes, proposals, referring phrases and two captions: the data ObjEmbed
(seed 002 §3.2) trains and is evaluated on (RefCOCO-style grounding, SORCE / REIRCOCO-style local image retrieval).

A scene is a :data:`SCENE_SIZE` canvas with 2 to 5 objects of the world (shape, colour, size) placed without
overlapping. Each object carries:

* its **box**, exact: the bounding box of the pixels it covers (drawn alone on a mask), (x1, y1, x2, y2), x2 and y2
  exclusive;
* a **referring phrase** that fits it and no other object of the scene, the shortest of "the <shape>", "the <colour>
  <shape>", "the <size> <shape>", "the <size> <colour> <shape>" that is unique (objects of a scene are distinct
  shape-colour-size triples, and share attributes with each other on purpose, so most phrases need two or three words).

The scene has a **short caption** naming every object by colour and shape, and a **long caption** adding sizes and
where each object sits (the caption pair of ObjEmbed's two global tokens). :func:`proposals` gives the boxes an
object embedder is run on, as a proposal generator would: jittered copies of every object's box (IoU with it from
about 0.3 to 1) and random boxes (IoU mostly near 0), so the region loss sees positives and negatives and the IoU
head sees the whole range.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

from .world import COLORS, SHAPES, SIZES, VALUES, _outline

SCENE_SIZE = 112
OBJECTS_PER_SCENE = (2, 5)
MARGIN = 2   # pixels kept free between two objects and between an object and the border


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    box: tuple[int, int, int, int]

    @property
    def words(self) -> dict[str, str]:
        return {"shape": self.shape, "color": self.color, "size": self.size}


@dataclass
class Scene:
    image: Image.Image
    objects: list[SceneObject]
    phrases: list[str] = field(default_factory=list)
    short_caption: str = ""
    long_caption: str = ""


PHRASE_FORMS = (("shape",), ("color", "shape"), ("size", "shape"), ("size", "color", "shape"))


def referring_phrase(objects: list[SceneObject], k: int) -> str:
    """The shortest phrase of :data:`PHRASE_FORMS` that fits ``objects[k]`` and no other object."""
    me = objects[k].words
    for form in PHRASE_FORMS:
        if sum(all(o.words[a] == me[a] for a in form) for o in objects) == 1:
            return "the " + " ".join(me[a] for a in form)
    raise ValueError(f"object {k} of the scene has a twin: {me}; scene objects must be distinct triples")


WHERE = {("top", "left"): "at the top left", ("top", "centre"): "at the top", ("top", "right"): "at the top right",
         ("middle", "left"): "on the left", ("middle", "centre"): "in the centre", ("middle", "right"): "on the right",
         ("bottom", "left"): "at the bottom left", ("bottom", "centre"): "at the bottom",
         ("bottom", "right"): "at the bottom right"}


def where(box: tuple[int, int, int, int]) -> str:
    """Where a box's centre sits, in thirds of the canvas ("at the top left", "in the centre", ...)."""
    third = SCENE_SIZE / 3
    row = ("top", "middle", "bottom")[min(int((box[1] + box[3]) / 2 // third), 2)]
    column = ("left", "centre", "right")[min(int((box[0] + box[2]) / 2 // third), 2)]
    return WHERE[(row, column)]


def _triples(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """``n`` distinct (shape, colour, size) triples; each after the first shares one or two attributes with an
    earlier one half of the time, so phrases need more than the shape."""
    chosen: list[tuple[str, str, str]] = []
    while len(chosen) < n:
        triple = [SHAPES[int(rng.integers(len(SHAPES)))], VALUES["color"][int(rng.integers(len(COLORS)))],
                  VALUES["size"][int(rng.integers(len(SIZES)))]]
        if chosen and rng.random() < 0.5:
            base = chosen[int(rng.integers(len(chosen)))]
            for i in rng.choice(3, size=int(rng.integers(1, 3)), replace=False):
                triple[int(i)] = base[int(i)]
        if tuple(triple) not in chosen:
            chosen.append(tuple(triple))
    return chosen


class _NoRoom(Exception):
    pass


def draw_scene(rng: np.random.Generator, n_objects: int | None = None) -> Scene:
    """One scene of ``n_objects`` objects (drawn from :data:`OBJECTS_PER_SCENE` when None); objects that find no free
    place are drawn again (from the same generator, so the result is still a function of its state)."""
    low, high = OBJECTS_PER_SCENE
    n = int(rng.integers(low, high + 1)) if n_objects is None else n_objects
    if not low <= n <= high:
        raise ValueError(f"a scene holds {low} to {high} objects, got {n}")
    for _ in range(100):
        try:
            return _place(rng, n)
        except _NoRoom:
            continue
    raise RuntimeError(f"no room for {n} objects on a {SCENE_SIZE}-pixel canvas after 100 draws")


def _place(rng: np.random.Generator, n: int) -> Scene:
    shade = int(rng.integers(25, 66))
    image = Image.new("RGB", (SCENE_SIZE, SCENE_SIZE), (shade,) * 3)
    draw, taken = ImageDraw.Draw(image), Image.new("1", (SCENE_SIZE, SCENE_SIZE))
    objects = []
    for shape, color, size in _triples(rng, n):
        r = SIZES[size] + float(rng.uniform(-1.0, 1.0))
        for _ in range(200):   # rejection sampling: a place whose (margin-grown) box is free
            cx, cy = (float(rng.uniform(r + MARGIN, SCENE_SIZE - r - MARGIN)) for _ in range(2))
            mask = Image.new("1", (SCENE_SIZE, SCENE_SIZE))
            _draw(ImageDraw.Draw(mask), shape, cx, cy, r, 1)
            box = mask.getbbox()
            grown = (max(box[0] - MARGIN, 0), max(box[1] - MARGIN, 0), box[2] + MARGIN, box[3] + MARGIN)
            if taken.crop(grown).getbbox() is None:
                break
        else:
            raise _NoRoom(f"no free place for a {size} {shape} after 200 tries")
        ImageDraw.Draw(taken).rectangle((grown[0], grown[1], grown[2] - 1, grown[3] - 1), fill=1)
        fill = tuple(int(v) for v in np.clip(np.array(COLORS[color]) + rng.integers(-12, 13, size=3), 0, 255))
        _draw(draw, shape, cx, cy, r, fill)
        objects.append(SceneObject(shape, color, size, tuple(int(v) for v in box)))
    scene = Scene(image, objects)
    scene.phrases = [referring_phrase(objects, k) for k in range(n)]
    scene.short_caption = _join([f"a {o.color} {o.shape}" for o in objects])
    scene.long_caption = _join([f"a {o.size} {o.color} {o.shape} {where(o.box)}" for o in objects])
    return scene


def _draw(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, r: float, fill) -> None:
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
    else:
        draw.polygon(_outline(shape, cx, cy, r), fill=fill)


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def proposals(boxes: np.ndarray, rng: np.random.Generator, count: int, jittered_per_box: int = 4) -> np.ndarray:
    """``count`` proposal boxes [count, 4] (x1, y1, x2, y2) for a scene with ``boxes`` [M, 4]: ``jittered_per_box``
    copies of each box with its centre moved and its sides scaled, the first by little, the last by up to a third of
    its size, then random boxes of
    the objects' sizes (the jittered copies first: with more than ``count`` of them the last boxes get fewer); every
    box at least 2 pixels wide and high, inside the canvas."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    out = []
    for x1, y1, x2, y2 in boxes:
        w, h = x2 - x1, y2 - y1
        for j in range(jittered_per_box):   # from tight to loose: up to (j + 0.5) / jittered_per_box of a third
            amplitude = (j + 0.5) / jittered_per_box / 3
            dx, dy = rng.uniform(-amplitude, amplitude, size=2) * (w, h)
            sw, sh = np.exp(rng.uniform(-amplitude, amplitude, size=2))
            cx, cy = (x1 + x2) / 2 + dx, (y1 + y2) / 2 + dy
            out.append((cx - w * sw / 2, cy - h * sh / 2, cx + w * sw / 2, cy + h * sh / 2))
    while len(out) < count:
        side = rng.uniform(6, 32, size=2)
        corner = rng.uniform(0, SCENE_SIZE - side)
        out.append((corner[0], corner[1], corner[0] + side[0], corner[1] + side[1]))
    out = np.clip(np.array(out[:count]), 0, SCENE_SIZE)
    out[:, :2] = np.minimum(out[:, :2], SCENE_SIZE - 2)
    out[:, 2:] = np.maximum(out[:, 2:], out[:, :2] + 2)
    return out
