"""Reranker prompts and answers: pointwise Yes/No (U-MARVEL eq. 3) and listwise "Ans: (k)" (UniME-V2).

* Pointwise and pairwise examples ask exactly the judge's prompt (:func:`uniembed.judge.prompt.
  build_judge_prompt`; U-MARVEL's released reranker and UniME-V2's judge share it), so the
  reranker scores P(Yes) through the judge's scoring backends, one code path.
* Listwise (UniME-V2-Reranker): the query, then the candidates written "(1) ... (2) ...", and the
  request for "the number corresponding to the candidate that best meets the requirements of the
  query"; the answer is ``Ans: (k)`` and the generation is parsed with ``\\((\\d+)\\)`` (released
  code). The instruction text below is this project's wording of that request (the released
  code's exact string is not part of the paper).
"""
from __future__ import annotations

import re
from typing import Sequence

from ..embed.embedder import EmbedItem
from ..model.chat import IMAGE, TEXT, ChatPrompt, item_parts, prompt_of_parts

LISTWISE_HEAD = ("I will provide you with a query and {n} candidates. Please identify the number corresponding to "
                 "the candidate that best meets the requirements of the query, and answer in the form "
                 "'Ans: (k)'. Query:")
LISTWISE_CANDIDATES = " Candidates:"
ANSWER = re.compile(r"\((\d+)\)")


def listwise_answer(position: int) -> str:
    """The target of a listwise example whose best candidate is at 1-based ``position``."""
    if position < 1:
        raise ValueError(f"listwise positions are 1-based, got {position}")
    return f"Ans: ({position})"


def parse_listwise_answer(generation: str, num_candidates: int) -> int | None:
    """The 1-based candidate number of the first "(k)" in ``generation`` with k in 1..num_candidates; None if
    there is none. An out-of-range "(9)" is passed over, not the end of the parse: "(9) then (2)" with 5
    candidates names candidate 2, as every match of the released regex ``\\((\\d+)\\)`` would offer it."""
    for match in ANSWER.finditer(generation):
        position = int(match.group(1))
        if 1 <= position <= num_candidates:
            return position
    return None


def build_listwise_prompt(query: EmbedItem, candidates: Sequence[EmbedItem]) -> ChatPrompt:
    """One user turn: the request, the query (instruction, image, text), then "(i) <candidate i>" in order."""
    if not candidates:
        raise ValueError("a listwise prompt needs at least one candidate")
    parts: list[tuple[str, str]] = [(TEXT, LISTWISE_HEAD.format(n=len(candidates)))]
    parts += item_parts(query, "query", True)
    parts.append((TEXT, LISTWISE_CANDIDATES))
    for number, candidate in enumerate(candidates, start=1):
        parts.append((TEXT, f" ({number}) "))
        parts += item_parts(candidate, f"candidate {number}", False)
    parts.append((TEXT, "."))
    return prompt_of_parts(parts)


__all__ = ["ANSWER", "IMAGE", "TEXT", "build_listwise_prompt", "listwise_answer", "parse_listwise_answer"]
