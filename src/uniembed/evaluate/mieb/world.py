"""MIEB-shaped data drawn from the synthetic shape world (:mod:`uniembed.data.synthetic.world`), in memory.

A draw is a seeded, fixed list of distinct objects with a fresh picture each (the world's jitter), never the
pictures the training splits wrote: the same seed gives the same objects and pixels. Each MIEB category's local task
(:mod:`uniembed.evaluate.mieb.tasks`) and the project's own evaluator (:mod:`uniembed.evaluate.mieb.scores`) read the
same draw, so their numbers can be compared one to one.
"""
from __future__ import annotations

import dataclasses
import textwrap
from dataclasses import dataclass
from functools import cached_property

from PIL import Image, ImageDraw, ImageFont

from ...data.synthetic.world import (ALL_OBJECTS, ATTRIBUTES, VALUES, ShapeObject, caption, paraphrase,
                                     partial_caption, render, seeded_rng)

#: The prompt a retrieval query is embedded with (the documents get none, as candidates in training).
T2I_PROMPT = "Find the picture that the caption describes."
#: The prompt of a multiple-choice query (picture + question); the choices, as documents, get none.
CHOICE_PROMPT = "Answer the question about the picture."
#: A multiple-choice question per attribute: the query of object ``i`` asks about ``ATTRIBUTES[i % 4]``.
ATTRIBUTE_QUESTIONS = {"shape": "What shape is it?", "color": "What colour is it?", "size": "How big is it?",
                       "position": "Where is it?"}
#: Visual STS's score range (STS-B's 0-5): 5 x the share of the four attributes two described objects have in common.
STS_MAX = 5


@dataclass(frozen=True)
class WorldDraw:
    """``n`` distinct objects of the world, each with its caption and one picture: positions ``start`` to
    ``start + n`` of the seed's permutation of every object, so draws of one seed at other starts never share an
    object (a linear probe's train and test splits)."""
    seed: int = 0
    n: int = 48
    start: int = 0

    def __post_init__(self):
        if self.n < 1 or self.start < 0 or self.start + self.n > len(ALL_OBJECTS):
            raise ValueError(f"n must be >= 1 and start + n <= {len(ALL_OBJECTS)} (the world's distinct objects), "
                             f"got start {self.start}, n {self.n}")

    @cached_property
    def objects(self) -> tuple[ShapeObject, ...]:
        order = seeded_rng(self.seed, "mieb", "objects").permutation(len(ALL_OBJECTS))
        return tuple(ALL_OBJECTS[int(i)] for i in order[self.start: self.start + self.n])

    @cached_property
    def images(self) -> tuple[Image.Image, ...]:
        rng = seeded_rng(self.seed, "mieb", "pictures", str(self.start))
        return tuple(render(obj, rng) for obj in self.objects)

    @property
    def captions(self) -> list[str]:
        return [caption(obj) for obj in self.objects]

    @property
    def ids(self) -> list[str]:
        return [f"obj{i:04d}" for i in range(self.start, self.start + self.n)]

    def labels(self, attribute: str = "shape") -> list[int]:
        """Each object's class: the index of its ``attribute``'s value in the world's values."""
        return [VALUES[attribute].index(getattr(obj, attribute)) for obj in self.objects]

    def swapped_captions(self, attribute: str) -> list[str]:
        """Each object's caption with ``attribute`` set to another value (seeded): the hard negative of an
        image-text compositionality pair. The pictures hold one object each, so a swap replaces the value, as
        SugarCrepe's replace-att / ARO's attribute probes do for the object they change."""
        rng = seeded_rng(self.seed, "mieb", "swap", attribute, str(self.start))
        return [caption(_other(obj, attribute, rng)) for obj in self.objects]

    def questions(self) -> list[tuple[str, str, str]]:
        """Each object's multiple-choice query: (attribute asked, question, the right choice's text)."""
        out = []
        for i, obj in enumerate(self.objects):
            attribute = ATTRIBUTES[i % len(ATTRIBUTES)]
            out.append((attribute, ATTRIBUTE_QUESTIONS[attribute], choice_text(attribute, getattr(obj, attribute))))
        return out

    @cached_property
    def sts_pairs(self) -> tuple[tuple[Image.Image, Image.Image, float], ...]:
        """Visual STS (MIEB §3.1, rendered STS): each object's caption and a paraphrase of an object sharing
        ``k`` of its four attributes (``k`` drawn in 0-4, seeded), both rendered to pictures of text; the gold
        score is ``STS_MAX * k / 4``."""
        rng = seeded_rng(self.seed, "mieb", "sts", str(self.start))
        pairs = []
        for obj in self.objects:
            kept = set(rng.choice(ATTRIBUTES, size=int(rng.integers(0, len(ATTRIBUTES) + 1)), replace=False))
            other = obj
            for attribute in ATTRIBUTES:
                if attribute not in kept:
                    other = _other(other, attribute, rng)
            pairs.append((render_text(caption(obj)), render_text(paraphrase(other, int(rng.integers(0, 3)))),
                          STS_MAX * len(kept) / len(ATTRIBUTES)))
        return tuple(pairs)


#: MIEB's linear probe: 16 examples per class, mean over 5 experiments (mteb's ``samples_per_label``,
#: ``n_experiments``); the train draw holds more than 16 per shape, so each experiment samples other ones.
SHOTS, EXPERIMENTS = 16, 5
#: The draws every MIEB-style task reads: the evaluation draw and the linear probe's train draw (disjoint objects).
LINEAR_PROBE_TRAIN, EVAL_DRAW = WorldDraw(seed=0, n=192, start=0), WorldDraw(seed=0, n=96, start=192)


def _other(obj: ShapeObject, attribute: str, rng) -> ShapeObject:
    """``obj`` with ``attribute`` set to one of the attribute's other values, drawn from ``rng``."""
    values = [v for v in VALUES[attribute] if v != getattr(obj, attribute)]
    return dataclasses.replace(obj, **{attribute: values[int(rng.integers(0, len(values)))]})


def choice_text(attribute: str, value: str) -> str:
    """A multiple-choice option in the world's words: "a circle", "a red shape", "a shape on the left"."""
    return partial_caption({attribute: value})


def render_text(text: str, width: int = 112, height: int = 56) -> Image.Image:
    """``text`` in black on white, wrapped to the picture's width (Pillow's default font): the rendered-text
    input of visual STS (Xiao et al. 2024, "Pixel Sentence Representation Learning")."""
    image = Image.new("RGB", (width, height), (255, 255, 255))
    font = ImageFont.load_default()
    ImageDraw.Draw(image).multiline_text((2, 2), "\n".join(textwrap.wrap(text, 24)), fill=(0, 0, 0), font=font,
                                         spacing=1)
    return image


def label_texts(attribute: str = "shape") -> list[str]:
    """Zero-shot classification's candidate labels, one text per value of ``attribute`` in the world's own words
    ("a circle", "a red shape"), as CLIP's "a photo of a {label}" prompts are in its captions' words."""
    return [choice_text(attribute, value) for value in VALUES[attribute]]
