"""MIEB-shaped data drawn from the synthetic shape world (:mod:`uniembed.data.synthetic.world`), in memory.

A draw is a seeded, fixed list of distinct objects with a fresh picture each (the world's jitter), never the
pictures the training splits wrote: the same seed gives the same objects and pixels. Each MIEB category's local task
(:mod:`uniembed.evaluate.mieb.tasks`) and the project's own evaluator (:mod:`uniembed.evaluate.mieb.scores`) read the
same draw, so their numbers can be compared one to one.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from PIL import Image

from ...data.synthetic.world import ALL_OBJECTS, VALUES, ShapeObject, caption, partial_caption, render, seeded_rng

#: The prompt a retrieval query is embedded with (the documents get none, as candidates in training).
T2I_PROMPT = "Find the picture that the caption describes."


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


def label_texts(attribute: str = "shape") -> list[str]:
    """Zero-shot classification's candidate labels, one text per value of ``attribute`` in the world's own words
    ("a circle", "a red shape"), as CLIP's "a photo of a {label}" prompts are in its captions' words."""
    return [partial_caption({attribute: value}) for value in VALUES[attribute]]
