"""Shapes datasets written in the M-BEIR (UniIR) layout under ``<root>/mbeir/``.

Six datasets (ids 0..5) cover the M-BEIR task shapes 0, 1, 2, 3, 4, 6 and 7::

    query/train/mbeir_<ds>_train.jsonl                 all train queries of a dataset
    query/{test,val}/mbeir_<ds>_task<id>_{test,val}.jsonl
    cand_pool/local/mbeir_<ds>_task<id>_cand_pool.jsonl test pool (target modality only)
    cand_pool/local/mbeir_<ds>_task<id>_val_cand_pool.jsonl  val pool
    cand_pool/global/mbeir_union_{train,test,val}_cand_pool.jsonl
    qrels/{train,test,val}/mbeir_<ds>_task<id>_{train,test,val}_qrels.txt    "qid 0 did 1 task_id"
    instructions/query_instructions.tsv
    mbeir_images/<ds>/00000.png ...

A query line (``query_src_content`` holds the query's object and the attributes every correct
candidate has; a candidate's ``src_content`` holds its own attributes)::

    {"qid": "0:7", "query_txt": "a red circle", "query_img_path": null, "query_modality": "text",
     "query_src_content": "{\\"object\\": {...}, \\"spec\\": {\\"shape\\": \\"circle\\", \\"color\\": \\"red\\"}}",
     "pos_cand_list": ["0:31"], "neg_cand_list": ["0:102"], "task_id": 0}

and a candidate line::

    {"did": "0:31", "txt": null, "img_path": "mbeir_images/shapecaption/00031.png",
     "modality": "image", "src_content": "{\\"shape\\": \\"circle\\", ...}"}

Each pool holds an object (or an answer) once as a listed candidate, and some pools give a share
of them a second, never-listed candidate (``SECOND_CANDIDATE_RATES``): a paraphrased caption,
another wiki entry, another twin picture, or an answer naming one more attribute of the pictured
object than asked ("large red circle" for "What colour and shape is it?").
Datasets share objects, so a query's object also appears, unlisted, in other datasets' pools.
About 30% of ShapeCaption text queries are partial captions ("a red circle") that several images
satisfy. All these genuine false negatives are in the ground truth: every candidate of the union
pool of the query's split with the task's candidate modality that satisfies the query
(:func:`~.world.genuine_match`; a text about the query's picture must also say nothing false about
it). Train queries list one or two negatives that differ from the positive in exactly one
attribute the query constrains; test pools contain such neighbours too. Train and test candidates
and query pictures are separate renderings.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from .world import (
    ALL_OBJECTS, ATTRIBUTES, PARTIAL_SPECS, QUESTIONS, VALUES, ImageFolder, ShapeObject,
    answer, attribute_text, caption, edit_instruction, genuine_match, one_attribute_variants,
    paraphrase, partial_caption, render, seeded_rng, spec_key, wiki_text, write_lines,
)

PARTIAL_CAPTION_RATE = 0.3
# task id -> share of its pool's keys (ShapeQA: of its queries) that also get a second, unlisted
# candidate (see :func:`_second_keys`), drawn from a random stream of their own.
SECOND_CANDIDATE_RATES = {1: 0.2, 2: 0.35, 3: 0.35, 4: 0.25, 6: 0.35}
# The paraphrase template of second captions ("on the left you can see a large red circle"): the
# others say "it is", which pulls every "What ... is it?" question of ShapeQA towards them.
SECOND_CAPTION_TEMPLATE = 2
INSTRUCTION_HEADER = ("query_modality", "cand_modality", "dataset_name", "dataset_id",
                      "prompt_1", "prompt_2", "prompt_3", "prompt_4")


@dataclasses.dataclass(frozen=True)
class MbeirTask:
    dataset_id: int
    dataset: str
    task_id: int
    query_modality: str
    cand_modality: str
    prompts: tuple[str, str, str, str]

    @property
    def slug(self) -> str:
        return self.dataset.lower()


TASKS = (
    MbeirTask(0, "ShapeCaption", 0, "text", "image", (
        "Find the picture that matches this caption of a shape.",
        "Retrieve the image of the shape described below.",
        "Identify the drawing that fits the following description.",
        "Show me an image of the described shape.")),
    MbeirTask(0, "ShapeCaption", 3, "image", "text", (
        "Find a caption that describes the shape in this picture.",
        "Retrieve the description of the shape shown in the image.",
        "Identify the caption that fits this drawing.",
        "Select the text that describes this shape drawing.")),
    MbeirTask(1, "ShapeAttribute", 1, "text", "text", (
        "Find the caption of a shape with these attributes.",
        "Retrieve the description that matches this attribute list.",
        "Identify the sentence describing a shape with the following properties.",
        "Match this list of shape attributes to its caption.")),
    MbeirTask(2, "ShapeWiki", 2, "text", "image,text", (
        "Find the illustrated shape entry that matches this description.",
        "Retrieve the shape wiki entry, picture and text, for this caption.",
        "Identify the encyclopedia entry with an image of the described shape.",
        "Show me the wiki page of the shape described here.")),
    MbeirTask(3, "ShapeTwin", 4, "image", "image", (
        "Find another drawing of the same shape.",
        "Retrieve a picture showing exactly the same object as this one.",
        "Identify an image of the identical shape, colour, size and place.",
        "Show me a similar image of this very shape.")),
    MbeirTask(4, "ShapeQA", 6, "image,text", "text", (
        "Answer the question about the shape in this picture.",
        "Retrieve the short answer to this question about the image.",
        "Identify the answer to the following question about the drawing.",
        "Find the reply to this question about the shown shape.")),
    MbeirTask(5, "ShapeEdit", 7, "image,text", "image", (
        "Retrieve the picture after applying this change to the shape.",
        "Find the image of the shape modified as described.",
        "Show me this drawing with the following modification.",
        "Identify the edited version of the shape in this image.")),
)
DATASETS = tuple(dict.fromkeys((t.dataset_id, t.dataset) for t in TASKS))

Key = tuple  # a canonical attribute tuple, see world.spec_key
_OBJECT_KEYS = tuple(spec_key(o) for o in ALL_OBJECTS)
_ANSWER_KEYS = tuple(spec_key(dict(zip(pair, values))) for pair in QUESTIONS
                     for values in itertools.product(*(VALUES[a] for a in pair)))


@dataclasses.dataclass
class _Plan:
    obj: ShapeObject                    # the object the query is made from
    spec: dict                          # attributes every correct candidate has
    positive: Key                       # the listed positive candidate
    neg_attrs: tuple                    # attributes a hard negative may change (one of them)
    txt: str | None
    image: ShapeObject | str | None     # render this object, or reuse this image path
    reference: Key | None = None        # ShapeEdit: the unedited object, a hard negative


def _plan(task: MbeirTask, obj: ShapeObject, rng: np.random.Generator, caption_images: dict) -> _Plan:
    full, key = obj.attributes(), spec_key(obj)
    if task.task_id == 0:
        spec = full
        if rng.random() < PARTIAL_CAPTION_RATE:
            spec = {a: full[a] for a in PARTIAL_SPECS[rng.integers(len(PARTIAL_SPECS))]}
        return _Plan(obj, spec, key, tuple(spec), partial_caption(spec), None)
    if task.task_id == 3:
        return _Plan(obj, full, key, ATTRIBUTES, None, caption_images[key])
    if task.task_id == 1:
        return _Plan(obj, full, key, ATTRIBUTES, attribute_text(obj), None)
    if task.task_id == 2:
        return _Plan(obj, full, key, ATTRIBUTES, caption(obj), None)
    if task.task_id == 4:
        return _Plan(obj, full, key, ATTRIBUTES, None, obj)
    if task.task_id == 6:
        pair = list(QUESTIONS)[rng.integers(len(QUESTIONS))]
        spec = {a: full[a] for a in pair}
        return _Plan(obj, spec, spec_key(spec), pair, QUESTIONS[pair], obj)
    attr = ATTRIBUTES[rng.integers(len(ATTRIBUTES))]
    value = [v for v in VALUES[attr] if v != full[attr]][rng.integers(len(VALUES[attr]) - 1)]
    target = obj.replace(attr, value)
    return _Plan(obj, target.attributes(), spec_key(target), ATTRIBUTES,
                 edit_instruction(attr, value), obj, reference=key)


def _hard_negatives(plan: _Plan, in_pool: dict, rng: np.random.Generator, k: int) -> list[Key]:
    """``k`` one-attribute neighbours of the positive, preferring ones already in the pool."""
    variants = [spec_key(v) for v in one_attribute_variants(dict(plan.positive), plan.neg_attrs)]
    variants = [variants[i] for i in rng.permutation(len(variants))]
    variants.sort(key=lambda v: (v != plan.reference, v not in in_pool))
    return variants[:k]


def _candidate(task: MbeirTask, key: Key, second: bool, did: str, images: ImageFolder, rng) -> dict:
    """A pool line for ``key``: the listed form, or a ``second`` one (a paraphrased caption, another
    wiki text); a picture is a fresh rendering either way, an answer always names exactly ``key``."""
    attrs = dict(key)
    txt = img_path = None
    if task.task_id == 6:
        txt = answer(attrs)
    elif task.cand_modality == "text":
        obj = ShapeObject(**attrs)
        txt = paraphrase(obj, SECOND_CAPTION_TEMPLATE) if second else caption(obj)
    if "image" in task.cand_modality:
        img_path = images.add(render(ShapeObject(**attrs), rng))
    if task.task_id == 2:
        txt = wiki_text(ShapeObject(**attrs), int(second))
    return {"did": did, "txt": txt, "img_path": img_path, "modality": task.cand_modality,
            "src_content": json.dumps(attrs)}


def _second_keys(task: MbeirTask, keys: list, plans: list, rng: np.random.Generator) -> list[Key]:
    """Keys of the unlisted second candidates: a share ``SECOND_CANDIDATE_RATES[task]`` of the pool's
    keys, or (ShapeQA) of its queries' answers, each with one more attribute of the pictured object."""
    rate = SECOND_CANDIDATE_RATES.get(task.task_id, 0.0)
    if task.task_id != 6:
        return [key for key in keys if rng.random() < rate]
    seconds = {}
    for plan in plans:
        if rng.random() < rate:
            extra = [a for a in ATTRIBUTES if a not in plan.spec][rng.integers(len(ATTRIBUTES) - len(plan.spec))]
            seconds[spec_key({**plan.spec, extra: getattr(plan.obj, extra)})] = None
    return list(seconds)


def _with_second_candidates(task: MbeirTask, keys: list, plans: list, rng) -> list[tuple[Key, bool]]:
    """(key, second): ``keys`` in their order, with the second candidates' keys at random places."""
    seconds = _second_keys(task, keys, plans, rng)
    seconds = [seconds[i] for i in rng.permutation(len(seconds))]
    total = len(keys) + len(seconds)
    slots = set(rng.choice(total, size=len(seconds), replace=False).tolist())
    firsts, later = iter(keys), iter(seconds)
    return [(next(later), True) if i in slots else (next(firsts), False) for i in range(total)]


def _build_task(task, split, plans, rng, second_rng, pool_size, counters, images):
    """Assemble the pool for ``plans``; return (candidates, queries, key -> listed img_path).

    Listed candidates and query pictures draw from ``rng`` in a fixed order; second candidates
    (:func:`_with_second_candidates`) draw only from ``second_rng``, so they change no listed draw.
    """
    train = split == "train"
    in_pool = dict.fromkeys(p.positive for p in plans)
    in_pool.update(dict.fromkeys(p.reference for p in plans if p.reference is not None))
    negatives = []
    for plan in plans:
        chosen = _hard_negatives(plan, in_pool, rng, int(rng.integers(1, 3)) if train else 1)
        in_pool.update(dict.fromkeys(chosen))
        negatives.append(chosen)
    universe = [k for k in (_ANSWER_KEYS if task.task_id == 6 else _OBJECT_KEYS) if k not in in_pool]
    fill = [universe[i] for i in rng.permutation(len(universe))[: max(0, pool_size - len(in_pool))]]
    keys = list(in_pool) + fill
    keys = [keys[i] for i in rng.permutation(len(keys))]

    candidates, listed = [], {}
    for key, second in _with_second_candidates(task, keys, plans, second_rng):
        did = f"{task.dataset_id}:{next(counters['did'])}"
        candidates.append(_candidate(task, key, second, did, images, second_rng if second else rng))
        if not second:
            listed[key] = candidates[-1]
    did_of = {key: cand["did"] for key, cand in listed.items()}
    queries = []
    for plan, negs in zip(plans, negatives):
        image = plan.image
        if isinstance(image, ShapeObject):
            image = images.add(render(image, rng))
        qid = f"{task.dataset_id}:{next(counters['qid'])}"
        queries.append({
            "qid": qid, "query_txt": plan.txt, "query_img_path": image,
            "query_modality": task.query_modality,
            "query_src_content": json.dumps({"object": plan.obj.attributes(), "spec": plan.spec}),
            "pos_cand_list": [did_of[plan.positive]],
            "neg_cand_list": [did_of[k] for k in negs] if train else [],
            "task_id": task.task_id,
        })
    return candidates, queries, {key: listed[key]["img_path"] for key in keys}


def _did_order(did: str) -> tuple[int, int]:
    dataset, number = did.split(":")
    return int(dataset), int(number)


def _truth(split: str, tasks_queries: list, candidates: list[dict]) -> list[dict]:
    """Ground-truth rows: each query's genuine matches in the union pool of ``split``.

    A genuine match has the task's candidate modality and satisfies the query's spec; a text
    about the query's picture (i->t, (i,t)->t) must also name nothing false about its object.
    """
    index, attrs_of = defaultdict(set), {}
    for cand in candidates:
        attrs_of[cand["did"]] = json.loads(cand["src_content"])
        for item in attrs_of[cand["did"]].items():
            index[(cand["modality"], *item)].add(cand["did"])
    rows = []
    for task, query in tasks_queries:
        content = json.loads(query["query_src_content"])
        about = content["object"] if "image" in task.query_modality and task.cand_modality == "text" else None
        found = set.intersection(*(index[(task.cand_modality, *item)] for item in content["spec"].items()))
        true = [d for d in sorted(found, key=_did_order) if genuine_match(attrs_of[d], content["spec"], about)]
        rows.append({"qid": query["qid"], "split": split, "task_id": task.task_id, "true_match_dids": true})
    return rows


def _jsonl(rows) -> list[str]:
    return [json.dumps(row) for row in rows]


def write_mbeir(root: str | Path, *, seed: int, train_queries: int, test_queries: int, val_queries: int,
                pool_size: int) -> tuple[dict[str, int], list[dict]]:
    """Write the M-BEIR layout under ``<root>/mbeir``; return (lines per file, ground-truth rows).

    ``train_queries`` / ``test_queries`` / ``val_queries`` are per task; ``pool_size`` is the least
    number of candidates per (task, split) pool (a pool grows to hold every positive and hard negative).
    The val split is drawn last from its own seeded streams, so it changes no train or test byte; its
    local pools are ``<stem>_val_cand_pool.jsonl`` (test keeps M-BEIR's ``<stem>_cand_pool.jsonl``).
    """
    base = Path(root) / "mbeir"
    counters = {d: {"did": itertools.count(), "qid": itertools.count()} for d, _ in DATASETS}
    images = {d: ImageFolder(base, f"mbeir_images/{name.lower()}") for d, name in DATASETS}
    counts, truth = {}, []
    pools = {"train": [], "test": [], "val": []}
    train_queries_of = defaultdict(list)
    for split, n in (("train", train_queries), ("test", test_queries), ("val", val_queries)):
        caption_images: dict = {}
        split_queries = []
        for task in TASKS:
            rng = seeded_rng(seed, "mbeir", task.dataset, str(task.task_id), split)
            second_rng = seeded_rng(seed, "mbeir-second", task.dataset, str(task.task_id), split)
            if task.task_id == 3:
                objects = [ShapeObject(**dict(k)) for k in caption_images]
            else:
                objects = list(ALL_OBJECTS)
            picks = rng.choice(len(objects), size=n, replace=n > len(objects))
            plans = [_plan(task, objects[i], rng, caption_images) for i in picks]
            candidates, queries, image_of = _build_task(
                task, split, plans, rng, second_rng, pool_size, counters[task.dataset_id], images[task.dataset_id])
            if task.task_id == 0:
                caption_images = image_of
            split_queries += [(task, q) for q in queries]
            pools[split] += candidates
            stem = f"mbeir_{task.slug}_task{task.task_id}"
            qrels = [f"{q['qid']} 0 {q['pos_cand_list'][0]} 1 {task.task_id}" for q in queries]
            counts[f"mbeir/qrels/{split}/{stem}_{split}_qrels.txt"] = write_lines(
                base / f"qrels/{split}/{stem}_{split}_qrels.txt", qrels)
            if split == "train":
                train_queries_of[task.slug] += queries
            else:
                counts[f"mbeir/query/{split}/{stem}_{split}.jsonl"] = write_lines(
                    base / f"query/{split}/{stem}_{split}.jsonl", _jsonl(queries))
                local = f"cand_pool/local/{stem}{'' if split == 'test' else '_' + split}_cand_pool.jsonl"
                counts[f"mbeir/{local}"] = write_lines(base / local, _jsonl(candidates))
        truth += _truth(split, split_queries, pools[split])
    for slug, queries in train_queries_of.items():
        counts[f"mbeir/query/train/mbeir_{slug}_train.jsonl"] = write_lines(
            base / f"query/train/mbeir_{slug}_train.jsonl", _jsonl(queries))
    for split, candidates in pools.items():
        name = f"cand_pool/global/mbeir_union_{split}_cand_pool.jsonl"
        counts[f"mbeir/{name}"] = write_lines(base / name, _jsonl(candidates))
    rows = ["\t".join(INSTRUCTION_HEADER)] + [
        "\t".join([t.query_modality, t.cand_modality, t.dataset, str(t.dataset_id), *t.prompts]) for t in TASKS]
    counts["mbeir/instructions/query_instructions.tsv"] = write_lines(
        base / "instructions/query_instructions.tsv", rows) - 1
    counts.update({f"mbeir/{folder.folder}/": folder.count for folder in images.values()})
    return counts, truth
