"""Fresh judge questions from the world's rules: every label agrees with an independent reading of the texts,
and no picture is a stored data-set image."""
from __future__ import annotations

import hashlib
import re

import numpy as np

from uniembed.data.synthetic.world import VALUES
from uniembed.instruct.world import WorldQuestions
from uniembed.model.chat import NO, YES

QUESTION_WORDS = {"colour": "color", "shape": "shape", "big": "size", "where": "position"}


def mentioned(text: str) -> dict[str, str]:
    """The attribute values a world text names, read word by word (not through the world's own rule)."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return {attr: value for attr, values in VALUES.items() for value in values if value in words}


def required(drawn) -> dict[str, str]:
    """What a genuine match must have, read from the query: its text, or its picture's object (+ the edit, or
    the asked attributes of a question)."""
    obj, text, tid = drawn.obj.attributes(), drawn.query.text or "", drawn.task.task_id
    if drawn.query.image_path is None:
        return mentioned(text)
    if tid == 6:
        asked = {QUESTION_WORDS[w] for w in re.findall(r"[a-z]+", text.lower()) if w in QUESTION_WORDS}
        return {a: obj[a] for a in asked}
    return {**obj, **mentioned(text)}   # an edit names the one changed value


def test_the_first_candidate_and_only_it_is_a_genuine_match(tmp_path):
    world, rng = WorldQuestions(tmp_path), np.random.default_rng(0)
    seen = set()
    for i in range(300):
        drawn = world.draw(rng, 3, str(i))
        seen.add(drawn.task.task_id)
        need = required(drawn)
        assert len(drawn.targets) == 4 and len({tuple(sorted(t.items())) for t in drawn.targets}) == 4
        for position, (target, candidate) in enumerate(zip(drawn.targets, drawn.candidates)):
            if candidate.text is not None and candidate.image_path is None:
                target = mentioned(candidate.text)            # a text candidate says what it is
            # a text answer about a picture may name only what the picture shows, and must name what is asked
            is_match = all(target.get(a) == v for a, v in need.items()) and (
                drawn.task.task_id not in (3, 6) or all(drawn.obj.attributes()[a] == v for a, v in target.items()))
            assert is_match == (position == 0), (drawn.task.dataset, drawn.query, need, target)
        examples = world.group(np.random.default_rng(i), 3, f"g{i}")
        assert [e.answer for e in examples] == [YES, NO, NO, NO]
    assert seen == {0, 1, 2, 3, 4, 6, 7}   # every task of the world


def test_pictures_are_fresh_renderings_never_a_stored_image(tmp_path, small_world):
    world, rng = WorldQuestions(tmp_path / "fresh"), np.random.default_rng(1)
    paths = [p for i in range(200) for example in world.group(rng, 3, str(i))
             for kind, p in example.parts if kind == "image"]
    assert paths and all(str(tmp_path / "fresh") in p for p in paths)
    stored = {hashlib.sha256(p.read_bytes()).hexdigest() for p in small_world["root"].rglob("*.png")}
    assert stored and not stored & {hashlib.sha256(open(p, "rb").read()).hexdigest() for p in paths}
