"""Fresh judge questions from the world's rules: what a real judge knows before it ever sees the data set.

UniME-V2's judge (Qwen2.5-VL-7B) arrives knowing what a red circle looks like and that "make it blue" changes
only the colour; the tiny judge learns only from what it is shown, and the train split (a few thousand pairs)
teaches it the labelled pairs, not the rule (measured: it tells a query's labelled positive from its mined
candidates, but not the mined candidates that genuinely match from those that do not). This module draws
unlimited *fresh* matching questions in the form of the world's seven M-BEIR tasks
(:data:`uniembed.data.synthetic.mbeir.TASKS`: caption -> picture, picture -> caption, attributes ->
caption, caption -> picture + wiki text, picture -> same picture, picture + question -> answer, picture +
edit -> edited picture), each a group: a query of a random object, one genuine match and ``negatives``
non-matches (one-attribute neighbours of the match first, as the world's hard negatives, then random
objects), every label decided by the world's own rule (:func:`~uniembed.data.synthetic.world.genuine_match`,
the rule of its truth table). Pictures are fresh renderings from this module's own seeded stream (the
world's jitter; never a stored train, val or test image); nothing is read from any split's files.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.synthetic.mbeir import SECOND_CAPTION_TEMPLATE, TASKS, MbeirTask
from ..data.synthetic.world import (ALL_OBJECTS, ATTRIBUTES, PARTIAL_SPECS, QUESTIONS, VALUES, ShapeObject, answer,
                                    attribute_text, caption, edit_instruction, genuine_match, matches,
                                    one_attribute_variants, paraphrase, partial_caption, render, save_png, wiki_text)
from ..embed.embedder import EmbedItem
from ..judge.prompt import build_judge_prompt
from ..model.chat import NO, YES, ChatExample

PARTIAL_CAPTION_RATE = 0.3   # the world's share of partial captions among ShapeCaption text queries
RANDOM_TRIES = 50


@dataclass(frozen=True)
class DrawnGroup:
    task: MbeirTask
    obj: ShapeObject          # the object the query is made from
    query: EmbedItem
    targets: list[dict]       # attributes of each candidate (an answer's: the attributes it names); match first
    candidates: list[EmbedItem]


class WorldQuestions:
    """Groups of fresh judge questions; pictures are written under ``image_dir`` (one file per rendering)."""

    def __init__(self, image_dir: str | Path):
        self.image_dir = Path(image_dir)
        self.image_dir.mkdir(parents=True, exist_ok=True)
        self._count = 0

    def _picture(self, obj: ShapeObject, rng: np.random.Generator, name: str) -> str:
        path = self.image_dir / f"{name}-{self._count}.png"
        self._count += 1
        save_png(render(obj, rng), path)
        return str(path)

    def group(self, rng: np.random.Generator, negatives: int, name: str) -> list[ChatExample]:
        """One query's genuine match ("Yes", first) and ``negatives`` non-matches ("No"), in the judge's prompt."""
        drawn = self.draw(rng, negatives, name)
        return [ChatExample(build_judge_prompt(drawn.query, candidate).parts, YES if i == 0 else NO,
                            f"world_{'yes' if i == 0 else 'no'}") for i, candidate in enumerate(drawn.candidates)]

    def draw(self, rng: np.random.Generator, negatives: int, name: str) -> "DrawnGroup":
        """A random task and object, the query, and the targets (match first) with their candidates."""
        task = TASKS[int(rng.integers(len(TASKS)))]
        obj = ALL_OBJECTS[int(rng.integers(len(ALL_OBJECTS)))]
        query, spec, about = self._query(task, obj, rng, name)
        match = _match(task, obj, spec)
        targets = [match, *_non_matches(task, match, spec, about, rng, negatives)]
        instruction = task.prompts[int(rng.integers(len(task.prompts)))]
        return DrawnGroup(task, obj, EmbedItem(query.text, query.image_path, instruction), targets,
                          [self._candidate(task, target, rng, name) for target in targets])

    def _query(self, task: MbeirTask, obj: ShapeObject, rng, name) -> tuple[EmbedItem, dict, dict | None]:
        """The query item, the attributes a match must have, and the pictured object a text answer must
        not contradict (image -> text tasks), as the world's truth table reads them."""
        full, tid = obj.attributes(), task.task_id
        if tid == 0:
            spec = full
            if rng.random() < PARTIAL_CAPTION_RATE:
                spec = {a: full[a] for a in PARTIAL_SPECS[int(rng.integers(len(PARTIAL_SPECS)))]}
            return EmbedItem(partial_caption(spec), None), spec, None
        if tid == 1:
            return EmbedItem(attribute_text(obj), None), full, None
        if tid == 2:
            return EmbedItem(caption(obj), None), full, None
        if tid in (3, 4):
            return EmbedItem(None, self._picture(obj, rng, name)), full, (full if tid == 3 else None)
        if tid == 6:
            pair = list(QUESTIONS)[int(rng.integers(len(QUESTIONS)))]
            return EmbedItem(QUESTIONS[pair], self._picture(obj, rng, name)), {a: full[a] for a in pair}, full
        attr = ATTRIBUTES[int(rng.integers(len(ATTRIBUTES)))]
        value = [v for v in VALUES[attr] if v != full[attr]][int(rng.integers(len(VALUES[attr]) - 1))]
        return (EmbedItem(edit_instruction(attr, value), self._picture(obj, rng, name)),
                obj.replace(attr, value).attributes(), None)

    def _candidate(self, task: MbeirTask, target: dict, rng, name) -> EmbedItem:
        """A candidate of the task's modality for ``target`` (an object's attributes, or an answer's)."""
        if task.task_id == 6:
            return EmbedItem(answer(target), None)
        obj = ShapeObject(**target)
        if task.cand_modality == "text":
            return EmbedItem(paraphrase(obj, SECOND_CAPTION_TEMPLATE) if rng.random() < 0.2 else caption(obj), None)
        picture = self._picture(obj, rng, name)
        return EmbedItem(wiki_text(obj, int(rng.integers(2))) if task.task_id == 2 else None, picture)


def _match(task: MbeirTask, obj: ShapeObject, spec: dict) -> dict:
    """The genuine match the group is built around: the answer naming the asked attributes (ShapeQA), else
    the object the spec describes, completed from the query's object where the spec leaves attributes open."""
    return dict(spec) if task.task_id == 6 else {**obj.attributes(), **spec}


def _non_matches(task: MbeirTask, match: dict, spec: dict, about: dict | None, rng, count: int) -> list[dict]:
    """``count`` distinct targets that are not genuine matches: one-attribute neighbours of the match on the
    attributes the spec constrains, shuffled, then random objects (or answers) of the world."""
    neighbours = one_attribute_variants(match, list(spec))
    out = [neighbours[i] for i in rng.permutation(len(neighbours))][:count]
    for _ in range(RANDOM_TRIES * count):
        if len(out) >= count:
            break
        other = ALL_OBJECTS[int(rng.integers(len(ALL_OBJECTS)))].attributes()
        if task.task_id == 6:
            other = {a: other[a] for a in spec}
        if not _is_match(other, spec, about) and other not in out:
            out.append(other)
    return out


def _is_match(target: dict, spec: dict, about: dict | None) -> bool:
    return genuine_match(target, spec, about) if about is not None else matches(target, spec)
