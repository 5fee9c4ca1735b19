"""Instruction data for the tiny instruct MLLM, built from curated TRAIN records only (docs/hard-negatives.md, the judge's model).

Real runs start from an instruction-following MLLM (Qwen2-VL-7B-Instruct) and judge with one
(UniME-V2 judges with Qwen2.5-VL-7B). The embedded default makes its own by next-token training
of the random tiny model on the synthetic world's train split, in the Qwen2-VL chat format:

* ``yes`` / ``hard`` / ``random``: matching questions answered "Yes" for a labelled positive,
  "No" for one of the query's own listed negatives (the world lists neighbours that differ in one
  attribute) and "No" for a candidate drawn at random from the train candidates of the
  positive's dataset and modality (a random draw may, rarely, be an unlabelled match: label
  noise, as in any real instruction set). A share ``judge_format`` of them is asked in exactly the
  judge's prompt (:func:`uniembed.judge.prompt.build_judge_prompt`, UniME-V2's "I will provide you
  with a query and a candidate. ... 'Yes' ... 'No'", query then candidate); the rest in its compact
  tail ("Query:<query>, Candidates:<candidate>."), the same comparison without the 45 instruction
  tokens, which a model this small learns several times faster and carries over to the full prompt;
* ``answer``: the query's instruction and content answered with its text-only positive
  (captioning "Find a caption that describes ...", attribute lists to captions, VQA "How big is it
  and where is it?" -> "large, on the right", classification labels);
* ``describe``: "Describe the picture." for the image-only positive of a text-only query,
  answered with the query's text (captions, possibly partial: "a red circle");
* groups (:func:`make_group`, settings ``group``): one query's positive ("Yes") and several
  non-matches ("No": its own listed negatives first, then random candidates as above), all in
  the same prompt format, for the listwise term of :mod:`.train`.

Inputs: the curated ``queries.parquet`` / ``candidates.parquet`` / ``pools.parquet`` of each
source (``data/schemas.py``). Only queries whose ``split`` is in ``splits`` (train) are read;
candidates are those the train queries name (positives, negatives) or whose pool a train query
searches (``pool`` column, e.g. ``union_train``), so no test query, test candidate, truth table
or mined list is ever read. Instructions are drawn per use from ``instruction_options`` with the
batch's seeded RNG, as UniIR's trainer does, so a resumed run sees the same examples.
"""
from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pyarrow.compute as pc

from ..artifacts import read_parquet
from ..data.schemas import CANDIDATES, POOLS, QUERIES
from ..embed.embedder import EmbedItem
from ..judge.prompt import build_judge_prompt
from ..model.chat import IMAGE, NO, TEXT, YES, ChatExample, ChatPrompt
from ..model.prompts import DESCRIBE
from .settings import KINDS, GroupLoss, InstructMix

DISTINCT_TRIES = 20  # random draws for a group negative not already in the group, then a repeat is kept


@dataclass(frozen=True)
class TrainQuery:
    query_id: str
    source: str
    text: str | None
    image_path: str | None
    instructions: tuple[str, ...]
    positive_ids: tuple[str, ...]
    negative_ids: tuple[str, ...]


@dataclass
class InstructData:
    """Train queries, the train candidates they may be paired with, and random-draw groups."""

    queries: list[TrainQuery]
    candidates: dict[str, EmbedItem]
    groups: dict[tuple, list[str]]          # (source, dataset, modality) -> candidate ids
    group_of: dict[str, tuple]
    entries: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, query index, detail)
    judge_format: float = 1.0   # share of matching questions asked in the judge's full prompt


def _modality(item: EmbedItem) -> str:
    return ",".join(m for m, present in ((IMAGE, item.image_path), (TEXT, item.text)) if present)


def load_instruct_data(curated_dirs: Mapping[str, str | os.PathLike], splits=("train",)) -> InstructData:
    """Read the ``splits`` queries of each curated source directory and their candidates (see module doc)."""
    queries, candidates, groups, group_of = [], {}, defaultdict(list), {}
    for source, directory in curated_dirs.items():
        directory = Path(directory)
        table = read_parquet(directory / "queries.parquet", QUERIES)
        table = table.filter(pc.is_in(table["split"], value_set=_strings(splits)))
        if table.num_rows == 0:
            raise ValueError(f"{directory / 'queries.parquet'}: no queries of split {list(splits)} to train on")
        rows = table.to_pylist()
        wanted = {cid for r in rows for cid in (*r["positive_ids"], *r["negative_ids"])}
        pool_names = {r["pool"] for r in rows if r["pool"]}
        if pool_names and (directory / "pools.parquet").is_file():
            pools = read_parquet(directory / "pools.parquet", POOLS)
            pools = pools.filter(pc.is_in(pools["pool"], value_set=_strings(pool_names)))
            wanted.update(pools["candidate_id"].to_pylist())
        for c in read_parquet(directory / "candidates.parquet", CANDIDATES).to_pylist():
            if c["candidate_id"] in wanted:
                item = EmbedItem(c["text"], c["image_path"])
                key = (source, c["dataset"], _modality(item))
                candidates[c["candidate_id"]] = item
                groups[key].append(c["candidate_id"])
                group_of[c["candidate_id"]] = key
        for r in rows:
            missing = [cid for cid in (*r["positive_ids"], *r["negative_ids"]) if cid not in candidates]
            if missing:
                raise ValueError(f"{directory}: query {r['query_id']} names candidates {missing[:3]} "
                                 "that candidates.parquet does not have")
            options = tuple(r["instruction_options"] or ([r["instruction"]] if r["instruction"] else []))
            queries.append(TrainQuery(r["query_id"], source, r["text"], r["image_path"], options,
                                      tuple(r["positive_ids"]), tuple(r["negative_ids"])))
    return InstructData(queries, candidates, dict(groups), group_of)


def _strings(values):
    import pyarrow as pa

    return pa.array(sorted(values), type=pa.string())


def plan_entries(data: InstructData, mix: InstructMix) -> list[tuple[str, int, int]]:
    """One epoch's example slots ``(kind, query index, detail)`` in a fixed order (the sampler shuffles)."""
    entries = []
    for i, q in enumerate(data.queries):
        positive = data.candidates[q.positive_ids[0]]
        entries += [("yes", i, j) for j in range(mix.yes)]
        entries += [("hard", i, j) for j in range(min(mix.hard, len(q.negative_ids)))]
        entries += [("random", i, j) for j in range(mix.random) if _has_random_negative(data, q)]
        if positive.text and not positive.image_path:
            entries += [("answer", i, j) for j in range(mix.answer)]
        elif positive.image_path and not positive.text and q.text and not q.image_path:
            entries += [("describe", i, j) for j in range(mix.describe)]
    if not entries:
        raise ValueError("the instruct mix produces no examples: every count is 0 or no query fits")
    data.entries, data.judge_format = entries, mix.judge_format
    return entries


def _query_item(q: TrainQuery, rng: np.random.Generator) -> EmbedItem:
    instruction = q.instructions[rng.integers(len(q.instructions))] if q.instructions else None
    return EmbedItem(q.text, q.image_path, instruction)


def _has_random_negative(data: InstructData, q: TrainQuery) -> bool:
    """Whether the positive's dataset-and-modality group holds a candidate that is not a positive."""
    return len(data.groups[data.group_of[q.positive_ids[0]]]) > len(q.positive_ids)


def _random_negative(data: InstructData, q: TrainQuery, rng: np.random.Generator) -> str:
    group = data.groups[data.group_of[q.positive_ids[0]]]
    excluded = set(q.positive_ids)
    while True:  # the caller checked _has_random_negative
        cid = group[rng.integers(len(group))]
        if cid not in excluded:
            return cid


def _content(item: EmbedItem, instruction: str | None) -> tuple[tuple[str, str], ...]:
    parts = [(TEXT, f"{instruction}\n")] if instruction else []
    if item.image_path:
        parts.append((IMAGE, item.image_path))
    if item.text:
        parts.append((TEXT, item.text))
    return tuple(parts)


def compact_prompt(query: EmbedItem, candidate: EmbedItem) -> ChatPrompt:
    """The judge prompt's tail without its instruction: "Query:<query>, Candidates:<candidate>."."""
    full = build_judge_prompt(query, candidate).parts
    head = full[0][1]
    start = head.index("Query:")
    return ChatPrompt(((TEXT, head[start:]), *full[1:]))


def make_example(data: InstructData, entry: tuple[str, int, int], rng: np.random.Generator) -> ChatExample:
    """The concrete example of one slot; random choices (instruction, random negative, prompt format) use ``rng``."""
    kind, index, detail = entry
    q = data.queries[index]
    query = _query_item(q, rng)
    positive_id = q.positive_ids[rng.integers(len(q.positive_ids))]
    if kind in ("yes", "hard", "random"):
        if kind == "yes":
            cid = positive_id
        elif kind == "hard":
            cid = q.negative_ids[detail]
        else:
            cid = _random_negative(data, q, rng)
        judge = rng.random() < data.judge_format
        prompt = (build_judge_prompt if judge else compact_prompt)(query, data.candidates[cid])
        return ChatExample(prompt.parts, YES if kind == "yes" else NO, f"{'judge' if judge else 'compact'}_{kind}")
    positive = data.candidates[positive_id]
    if kind == "answer":
        return ChatExample(_content(EmbedItem(q.text, q.image_path), query.instruction or DESCRIBE),
                           positive.text, kind)
    if kind == "describe":
        return ChatExample(((TEXT, f"{DESCRIBE}\n"), (IMAGE, positive.image_path)), q.text, kind)
    raise ValueError(f"unknown example kind {kind!r}; expected one of {KINDS}")


def group_queries(data: InstructData) -> list[int]:
    """Indices of the train queries a group can be built for (a non-positive candidate to draw)."""
    return [i for i, q in enumerate(data.queries)
            if q.negative_ids or _has_random_negative(data, q)]


def make_group(data: InstructData, index: int, rng: np.random.Generator, group: GroupLoss) -> list[ChatExample]:
    """Query ``index``'s positive ("Yes", first) then ``group.negatives`` non-matches ("No"): its own listed
    negatives in a random order, then random candidates of the positive's dataset and modality
    (distinct while the group has enough); one prompt format for the whole group, drawn with ``rng``."""
    q = data.queries[index]
    query = _query_item(q, rng)
    listed = [q.negative_ids[i] for i in rng.permutation(len(q.negative_ids))][:group.negatives]
    others = _has_random_negative(data, q)
    negatives = list(listed)
    while len(negatives) < group.negatives:
        if not others:  # only listed negatives: repeat them
            negatives.append(listed[len(negatives) % len(listed)])
            continue
        cid = next((c for c in (_random_negative(data, q, rng) for _ in range(DISTINCT_TRIES)) if c not in negatives), None)
        negatives.append(cid if cid is not None else _random_negative(data, q, rng))
    judge = rng.random() < data.judge_format
    prompt = build_judge_prompt if judge else compact_prompt
    fmt = "judge" if judge else "compact"
    positive = q.positive_ids[rng.integers(len(q.positive_ids))]
    return [ChatExample(prompt(query, data.candidates[positive]).parts, YES, f"{fmt}_group_yes"),
            *(ChatExample(prompt(query, data.candidates[cid]).parts, NO, f"{fmt}_group_no") for cid in negatives)]
