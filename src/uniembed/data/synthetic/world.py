"""The shapes world: objects with four attributes, the texts that describe them, and their pictures.

An object is a (shape, colour, size, position) tuple; 6 x 6 x 2 x 5 = 360 objects exist. Every
text is a pure function of attributes, so ground truth is exact: :func:`matches` says whether an
object (or an answer's attribute set) satisfies a partial specification such as
``{"color": "red", "shape": "circle"}`` ("a red circle"), and :func:`genuine_match` adds the rule for
a text about a pictured object (it must say nothing false about it): that is how every false
negative is found.
Pictures are 56x56 RGB with a little jitter (position, radius, colour, background shade), so two
renderings of one object differ slightly while every attribute stays plainly visible.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
import zlib
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np
from PIL import Image, ImageDraw

from ...artifacts import atomic_path

SHAPES = ("circle", "square", "triangle", "diamond", "star", "cross")
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 70),
    "blue": (50, 90, 235),
    "yellow": (240, 215, 40),
    "purple": (155, 70, 205),
    "orange": (245, 140, 25),
}
SIZES = {"small": 8, "large": 14}  # radius in pixels
POSITIONS = {"left": (15, 28), "right": (41, 28), "top": (28, 15), "bottom": (28, 41), "center": (28, 28)}
POSITION_PHRASES = {
    "left": "on the left", "right": "on the right", "top": "at the top",
    "bottom": "at the bottom", "center": "in the center",
}
ATTRIBUTES = ("shape", "color", "size", "position")
VALUES = {"shape": SHAPES, "color": tuple(COLORS), "size": tuple(SIZES), "position": tuple(POSITIONS)}
IMAGE_SIZE = 56
CROP_SIZE = 32

# Partial captions always name the shape and keep one or two of the other attributes.
PARTIAL_SPECS = (
    ("shape", "color"), ("shape", "size"), ("shape", "position"),
    ("shape", "color", "size"), ("shape", "color", "position"), ("shape", "size", "position"),
)
# Two-attribute questions; the answer names exactly the asked attributes.
QUESTIONS = {
    ("color", "shape"): "What colour and shape is it?",
    ("size", "position"): "How big is it and where is it?",
    ("shape", "position"): "What shape is it and where is it?",
    ("color", "size"): "What colour is it and how big is it?",
    ("color", "position"): "What colour is it and where is it?",
    ("shape", "size"): "What shape is it and how big is it?",
}
PARAPHRASES = (
    "there is {a} {color} {shape} {where}, and it is {size}",
    "a {shape} that is {size} and {color}, {where}",
    "{where} you can see a {size} {color} {shape}",
)
WIKI_TEMPLATES = (
    "{color} {shape}: a {shape} drawn in {color}.",
    "the {shape} in {color}: a {color} {shape} figure.",
)


@dataclasses.dataclass(frozen=True, order=True)
class ShapeObject:
    shape: str
    color: str
    size: str
    position: str

    def __post_init__(self):
        for attr in ATTRIBUTES:
            if getattr(self, attr) not in VALUES[attr]:
                raise ValueError(f"unknown {attr} {getattr(self, attr)!r}; expected one of {VALUES[attr]}")

    def attributes(self) -> dict[str, str]:
        return {attr: getattr(self, attr) for attr in ATTRIBUTES}

    def replace(self, attr: str, value: str) -> "ShapeObject":
        return dataclasses.replace(self, **{attr: value})


ALL_OBJECTS = tuple(ShapeObject(*values) for values in itertools.product(*(VALUES[a] for a in ATTRIBUTES)))


def _attrs(target: ShapeObject | Mapping[str, str]) -> Mapping[str, str]:
    return target.attributes() if isinstance(target, ShapeObject) else target


def matches(target: ShapeObject | Mapping[str, str], spec: Mapping[str, str]) -> bool:
    """True when ``target`` has every attribute value that ``spec`` names (missing attributes fail)."""
    attrs = _attrs(target)
    return all(attrs.get(attr) == value for attr, value in spec.items())


def genuine_match(candidate: ShapeObject | Mapping[str, str], spec: Mapping[str, str],
                  about: ShapeObject | Mapping[str, str] | None = None) -> bool:
    """True when ``candidate`` satisfies ``spec`` and, given ``about`` (the pictured object a text
    candidate answers for), every attribute the candidate names is true of ``about``."""
    return matches(candidate, spec) and (about is None or matches(about, _attrs(candidate)))


def differing_attributes(a: ShapeObject | Mapping[str, str], b: ShapeObject | Mapping[str, str]) -> list[str]:
    """Attributes on which ``a`` and ``b`` disagree (an attribute present in only one counts)."""
    a, b = _attrs(a), _attrs(b)
    return [attr for attr in ATTRIBUTES if a.get(attr) != b.get(attr)]


def one_attribute_variants(spec: Mapping[str, str], attrs: Iterable[str] | None = None) -> list[dict[str, str]]:
    """Every specification equal to ``spec`` except for one of ``attrs`` (default: all of its keys)."""
    variants = []
    for attr in (spec.keys() if attrs is None else attrs):
        for value in VALUES[attr]:
            if value != spec[attr]:
                variants.append({**spec, attr: value})
    return variants


def spec_key(spec: Mapping[str, str] | ShapeObject) -> tuple[tuple[str, str], ...]:
    """A hashable, canonically ordered form of a specification."""
    attrs = _attrs(spec)
    return tuple((attr, attrs[attr]) for attr in ATTRIBUTES if attr in attrs)


# ---- texts ---------------------------------------------------------------------------------

def partial_caption(spec: Mapping[str, str]) -> str:
    """'a large red circle on the left'; omitted attributes are left out ('a red circle')."""
    words = [spec[a] for a in ("size", "color") if a in spec] + [spec.get("shape", "shape")]
    if "position" in spec:
        words.append(POSITION_PHRASES[spec["position"]])
    return " ".join([_article(words[0])] + words)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def caption(obj: ShapeObject) -> str:
    return partial_caption(obj.attributes())


def attribute_text(obj: ShapeObject) -> str:
    """'shape: circle; color: red; size: large; position: left'."""
    return "; ".join(f"{attr}: {getattr(obj, attr)}" for attr in ATTRIBUTES)


def paraphrase(obj: ShapeObject, variant: int) -> str:
    """The same content as :func:`caption` in another word order (an NLI entailment)."""
    template = PARAPHRASES[variant % len(PARAPHRASES)]
    return template.format(a=_article(obj.color), where=POSITION_PHRASES[obj.position], **obj.attributes())


def answer(spec: Mapping[str, str]) -> str:
    """Short answer naming exactly the attributes of ``spec``: 'red circle', 'large, on the left'."""
    text = " ".join(spec[a] for a in ("size", "color", "shape") if a in spec)
    if "position" in spec:
        where = POSITION_PHRASES[spec["position"]]
        text = f"{text}, {where}" if text else where
    return text


def edit_instruction(attr: str, value: str) -> str:
    """A modification text: 'make it blue', 'make it small', 'turn it into a star', 'move it to the top'."""
    if attr in ("color", "size"):
        return f"make it {value}"
    if attr == "shape":
        return f"turn it into a {value}"
    return f"move it to the {value}"


def wiki_text(obj: ShapeObject, variant: int = 0) -> str:
    """The text half of an image+text entry: names colour and shape only; the picture shows the rest."""
    return WIKI_TEMPLATES[variant % len(WIKI_TEMPLATES)].format(color=obj.color, shape=obj.shape)


def corpus(seed: int) -> list[str]:
    """Every text the world and its dataset writers can produce, in a seeded order (tokenizer training)."""
    from .mbeir import TASKS  # imported here: the writers import this module
    from .mmeb import TEMPLATES

    texts = {"Yes", "No"}
    for obj in ALL_OBJECTS:
        texts.update([caption(obj), attribute_text(obj)])
        texts.update(wiki_text(obj, v) for v in range(len(WIKI_TEMPLATES)))
        texts.update(paraphrase(obj, v) for v in range(len(PARAPHRASES)))
        attrs = obj.attributes()
        texts.update(partial_caption({a: attrs[a] for a in keep}) for keep in PARTIAL_SPECS)
        for n in (2, 3):  # answers name the asked pair, ShapeQA's second answers one more attribute
            texts.update(answer({a: attrs[a] for a in names}) for names in itertools.combinations(ATTRIBUTES, n))
    texts.update(QUESTIONS.values())
    texts.update(edit_instruction(a, v) for a in ATTRIBUTES for v in VALUES[a])
    texts.update(prompt for task in TASKS for prompt in task.prompts)
    texts.update(TEMPLATES.values())
    ordered = sorted(texts)
    return [ordered[i] for i in seeded_rng(seed, "corpus").permutation(len(ordered))]


# ---- pictures ------------------------------------------------------------------------------

def _outline(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    if shape == "square":
        h = 0.85 * r
        return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + 0.95 * r, cy + 0.8 * r), (cx - 0.95 * r, cy + 0.8 * r)]
    if shape == "diamond":
        return [(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)]
    if shape == "star":
        return [(cx + (r if k % 2 == 0 else 0.45 * r) * math.cos(math.pi * (k / 5 - 0.5)),
                 cy + (r if k % 2 == 0 else 0.45 * r) * math.sin(math.pi * (k / 5 - 0.5))) for k in range(10)]
    if shape == "cross":
        t = 0.35 * r
        return [(cx - t, cy - r), (cx + t, cy - r), (cx + t, cy - t), (cx + r, cy - t), (cx + r, cy + t),
                (cx + t, cy + t), (cx + t, cy + r), (cx - t, cy + r), (cx - t, cy + t), (cx - r, cy + t),
                (cx - r, cy - t), (cx - t, cy - t)]
    raise ValueError(f"unknown shape {shape!r}")


def render_scene(objects: Iterable[ShapeObject], rng: np.random.Generator) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Draw ``objects`` on one 56x56 canvas; also return a 32x32 crop box around each object."""
    shade = int(rng.integers(25, 66))
    tint = rng.integers(-4, 5, size=3)
    image = Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), tuple(int(shade + t) for t in tint))
    draw = ImageDraw.Draw(image)
    boxes = []
    for obj in objects:
        cx, cy = (c + int(d) for c, d in zip(POSITIONS[obj.position], rng.integers(-2, 3, size=2)))
        r = SIZES[obj.size] + float(rng.uniform(-1.0, 1.0))
        fill = tuple(int(v) for v in np.clip(np.array(COLORS[obj.color]) + rng.integers(-12, 13, size=3), 0, 255))
        if obj.shape == "circle":
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=fill)
        else:
            draw.polygon(_outline(obj.shape, cx, cy, r), fill=fill)
        x0 = min(max(cx - CROP_SIZE // 2, 0), IMAGE_SIZE - CROP_SIZE)
        y0 = min(max(cy - CROP_SIZE // 2, 0), IMAGE_SIZE - CROP_SIZE)
        boxes.append((x0, y0, x0 + CROP_SIZE, y0 + CROP_SIZE))
    return image, boxes


def render(obj: ShapeObject, rng: np.random.Generator) -> Image.Image:
    """One 56x56 RGB picture of ``obj``; each call draws fresh jitter from ``rng``."""
    return render_scene([obj], rng)[0]


def crop(image: Image.Image, box: tuple[int, int, int, int]) -> Image.Image:
    """The region ``box`` of ``image`` scaled back to 56x56 (a grounding candidate)."""
    return image.crop(box).resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)


# ---- deterministic output ------------------------------------------------------------------

def seeded_rng(seed: int, *names: str) -> np.random.Generator:
    """An independent generator per (seed, component name): components never shift each other's draws."""
    return np.random.default_rng([int(seed), *(zlib.crc32(name.encode()) for name in names)])


def save_png(image: Image.Image, path: str | Path) -> None:
    """Write ``image`` as PNG atomically; PIL adds no timestamp, so equal pixels give equal bytes."""
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def write_lines(path: str | Path, lines: Iterable[str]) -> int:
    """Write text lines (each ending in a newline) atomically; return how many were written."""
    lines = list(lines)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return len(lines)


class ImageFolder:
    """Numbered PNGs ``<base>/<folder>/00000.png``...; :meth:`add` returns the path relative to ``base``."""

    def __init__(self, base: str | Path, folder: str):
        self.base, self.folder, self.count = Path(base), folder, 0

    def add(self, image: Image.Image) -> str:
        relative = f"{self.folder}/{self.count:05d}.png"
        self.count += 1
        save_png(image, self.base / relative)
        return relative
