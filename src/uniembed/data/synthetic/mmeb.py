"""Shapes datasets written as MMEB (VLM2Vec) Parquet rows under ``<root>/mmeb/``.

Train rows, ``mmeb/train/<Dataset>.parquet`` (an empty string means absent; ``<|image_1|>`` marks
where the image goes)::

    {"qry": "<|image_1|>\\nRepresent the given image for classification\\n",
     "qry_image_path": "train/ShapeClassify/00003.png", "pos_text": "red circle",
     "pos_image_path": "", "neg_text": "blue circle", "neg_image_path": ""}

Eval rows, ``mmeb/eval/<Dataset>.parquet`` (index 0 of the target lists is the positive)::

    {"qry_text": "Find me an image that matches the given caption: a small red star at the top\\n",
     "qry_img_path": "", "tgt_text": ["<|image_1|>\\nRepresent the given image.\\n", ...],
     "tgt_img_path": ["eval/ShapeRetrieval/00017.png", ...]}

Image paths are relative to ``mmeb/images/``. One eval dataset per MMEB meta-task, listed in
``mmeb/eval/datasets.tsv`` (``dataset  meta_task  split``); the IND ones also have train rows.
Every eval row has a few distractors that differ from the positive in exactly one attribute.
"""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from ...artifacts import write_parquet
from .world import (
    ALL_OBJECTS, COLORS, QUESTIONS, SHAPES, VALUES, ImageFolder, ShapeObject, answer, caption, crop,
    matches, one_attribute_variants, render, render_scene, seeded_rng, spec_key, write_lines,
)

DATASETS = (  # (name, MMEB meta-task, IND/OOD)
    ("ShapeClassify", "Classification", "IND"),
    ("ShapeVQA", "VQA", "OOD"),
    ("ShapeRetrieval", "Retrieval", "IND"),
    ("ShapeGrounding", "Grounding", "OOD"),
)
TEMPLATES = {
    "classification_query": "<|image_1|>\nRepresent the given image for classification\n",
    "vqa_query": "<|image_1|>\nRepresent the given image with the following question: ",
    "retrieval_query": "Find me an image that matches the given caption: ",
    "image_target": "<|image_1|>\nRepresent the given image.\n",
    "grounding_query": "<|image_1|>\nSelect the portion of the image that isolates the object labeled as ",
    "crop_target": "<|image_1|>\nRepresent the given cropped image of the object\n",
}
HARD_DISTRACTORS = 4  # one-attribute-different distractors per eval row (at most)

TRAIN_SCHEMA = pa.schema([(name, pa.string()) for name in (
    "qry", "qry_image_path", "pos_text", "pos_image_path", "neg_text", "neg_image_path")])
EVAL_SCHEMA = pa.schema([("qry_text", pa.string()), ("qry_img_path", pa.string()),
                         ("tgt_text", pa.list_(pa.string())), ("tgt_img_path", pa.list_(pa.string()))])
TRUTH_SCHEMA = pa.schema([("dataset", pa.string()), ("row", pa.int32()), ("query_spec", pa.string()),
                          ("tgt_attrs", pa.list_(pa.string())), ("is_match", pa.list_(pa.bool_()))])

_LABEL_KEYS = [spec_key({"color": c, "shape": s}) for c in COLORS for s in SHAPES]
_ANSWER_KEYS = {pair: [spec_key(dict(zip(pair, values))) for values in itertools.product(*(VALUES[a] for a in pair))]
                for pair in QUESTIONS}


def _pick(options: list, k: int, rng: np.random.Generator) -> list:
    """Up to ``k`` of ``options`` in random order."""
    return [options[i] for i in rng.permutation(len(options))[: max(0, k)]]


def _sample_objects(n: int, rng: np.random.Generator) -> list[ShapeObject]:
    return [ALL_OBJECTS[i] for i in rng.choice(len(ALL_OBJECTS), size=n, replace=n > len(ALL_OBJECTS))]


def _targets(positive, hard: list, others: list, n_cand: int, rng) -> list:
    """The positive first, then the hard distractors and enough others, shuffled together."""
    hard = _pick(hard, HARD_DISTRACTORS, rng)
    rest = _pick([o for o in others if o != positive and o not in hard], n_cand - 1 - len(hard), rng)
    return [positive] + _pick(hard + rest, len(hard) + len(rest), rng)


def _gallery(objects: list[ShapeObject], size: int, rng, folder: ImageFolder) -> dict:
    """One rendering per object key: the given objects, a one-attribute neighbour of each, random fill."""
    keys = dict.fromkeys(spec_key(o) for o in objects)
    for obj in objects:
        near = [spec_key(v) for v in one_attribute_variants(obj.attributes())]
        if not any(k in keys for k in near):
            keys[_pick(near, 1, rng)[0]] = None
    keys.update(dict.fromkeys(_pick([k for k in map(spec_key, ALL_OBJECTS) if k not in keys], size - len(keys), rng)))
    return {k: folder.add(render(ShapeObject(**dict(k)), rng)) for k in _pick(list(keys), len(keys), rng)}


def _eval_classify(n, n_cand, rng, folder):
    for obj in _sample_objects(n, rng):
        spec = {"color": obj.color, "shape": obj.shape}
        hard = [spec_key(v) for v in one_attribute_variants(spec)]
        targets = _targets(spec_key(spec), hard, _LABEL_KEYS, n_cand, rng)
        yield (TEMPLATES["classification_query"], folder.add(render(obj, rng)),
               [answer(dict(t)) for t in targets], [""] * len(targets), spec, [dict(t) for t in targets])


def _eval_vqa(n, n_cand, rng, folder):
    pairs = list(QUESTIONS)
    for obj in _sample_objects(n, rng):
        full = obj.attributes()
        pair, other = (pairs[i] for i in rng.choice(len(pairs), size=2, replace=False))
        spec = {a: full[a] for a in pair}
        hard = [spec_key(v) for v in one_attribute_variants(spec)]
        true_elsewhere = spec_key({a: full[a] for a in other})  # true of the picture, answers another question
        others = [k for k in _ANSWER_KEYS[pair] if k not in hard]
        targets = _targets(spec_key(spec), hard, others, n_cand - 1, rng) + [true_elsewhere]
        if len(targets) < n_cand:
            spare = [k for p in pairs if p != pair for k in _ANSWER_KEYS[p] if k not in targets]
            targets += _pick(spare, n_cand - len(targets), rng)
        targets = targets[:1] + _pick(targets[1:], len(targets) - 1, rng)
        yield (TEMPLATES["vqa_query"] + QUESTIONS[pair] + "\n", folder.add(render(obj, rng)),
               [answer(dict(t)) for t in targets], [""] * len(targets), spec, [dict(t) for t in targets])


def _eval_retrieval(n, n_cand, rng, folder, gallery_size):
    objects = _sample_objects(n, rng)
    path_of = _gallery(objects, gallery_size, rng, folder)
    for obj in objects:
        hard = [k for k in map(spec_key, one_attribute_variants(obj.attributes())) if k in path_of]
        targets = _targets(spec_key(obj), hard, list(path_of), n_cand, rng)
        yield (TEMPLATES["retrieval_query"] + caption(obj) + "\n", "", [TEMPLATES["image_target"]] * len(targets),
               [path_of[t] for t in targets], obj.attributes(), [dict(t) for t in targets])


def _eval_grounding(n, n_cand, rng, folder):
    scenes, crops = [], []  # crops: (object, path) over all scenes
    for _ in range(n):
        a, b = _sample_objects(2, rng)
        while (a.color, a.shape) == (b.color, b.shape):
            b = _sample_objects(1, rng)[0]
        places = [("left", "right"), ("top", "bottom")][rng.integers(2)]
        if rng.random() < 0.5:
            places = places[::-1]
        a, b = a.replace("position", places[0]), b.replace("position", places[1])
        image, boxes = render_scene([a, b], rng)
        scene = folder.add(image)
        scenes.append((a, scene, len(crops), len(crops) + 1))
        crops += [(a, folder.add(crop(image, boxes[0]))), (b, folder.add(crop(image, boxes[1])))]
    for a, scene, pos, partner in scenes:
        spec = {"color": a.color, "shape": a.shape}
        near = [i for i, (o, _) in enumerate(crops) if i != partner
                and sum(getattr(o, k) != v for k, v in spec.items()) == 1]
        others = [i for i, (o, _) in enumerate(crops) if not matches(o, spec) and i != partner]
        targets = _targets(pos, near, others, n_cand - 1, rng)
        targets = targets[:1] + _pick(targets[1:] + [partner], len(targets), rng)
        label = f"{a.color} {a.shape}"
        yield (TEMPLATES["grounding_query"] + f'"{label}"\n', scene, [TEMPLATES["crop_target"]] * len(targets),
               [crops[i][1] for i in targets], spec, [crops[i][0].attributes() for i in targets])


def _train_classify(n, rng, folder):
    for obj in _sample_objects(n, rng):
        spec = {"color": obj.color, "shape": obj.shape}
        neg = _pick(one_attribute_variants(spec), 1, rng)[0]
        yield (TEMPLATES["classification_query"], folder.add(render(obj, rng)), answer(spec), "", answer(neg), "")


def _train_retrieval(n, rng, folder, gallery_size):
    objects = _sample_objects(n, rng)
    path_of = _gallery(objects, gallery_size, rng, folder)
    for obj in objects:
        near = [k for k in map(spec_key, one_attribute_variants(obj.attributes())) if k in path_of]
        neg = _pick(near, 1, rng)[0]
        yield (TEMPLATES["retrieval_query"] + caption(obj) + "\n", "", TEMPLATES["image_target"],
               path_of[spec_key(obj)], TEMPLATES["image_target"], path_of[neg])


def write_mmeb(root: str | Path, *, seed: int, train_rows: int, eval_rows: int, candidates: int,
               gallery_size: int) -> tuple[dict[str, int], list[dict]]:
    """Write MMEB train/eval Parquet files under ``<root>/mmeb``; return (rows per file, truth rows).

    ``candidates`` is the length of each eval row's target lists; ``gallery_size`` the number of
    rendered images the retrieval rows draw their targets from.
    """
    base = Path(root) / "mmeb"
    counts, truth = {}, []
    for name, meta_task, split in DATASETS:
        rng = seeded_rng(seed, "mmeb", name, "eval")
        folder = ImageFolder(base / "images", f"eval/{name}")
        if name == "ShapeClassify":
            rows = list(_eval_classify(eval_rows, candidates, rng, folder))
        elif name == "ShapeVQA":
            rows = list(_eval_vqa(eval_rows, candidates, rng, folder))
        elif name == "ShapeRetrieval":
            rows = list(_eval_retrieval(eval_rows, candidates, rng, folder, gallery_size))
        else:
            rows = list(_eval_grounding(eval_rows, candidates, rng, folder))
        table = pa.table({"qry_text": [r[0] for r in rows], "qry_img_path": [r[1] for r in rows],
                          "tgt_text": [r[2] for r in rows], "tgt_img_path": [r[3] for r in rows]})
        write_parquet(table, base / f"eval/{name}.parquet", EVAL_SCHEMA)
        counts[f"mmeb/eval/{name}.parquet"] = len(rows)
        counts[f"mmeb/images/eval/{name}/"] = folder.count
        for i, (*_, spec, tgt_attrs) in enumerate(rows):
            truth.append({"dataset": name, "row": i, "query_spec": json.dumps(spec),
                          "tgt_attrs": [json.dumps(t) for t in tgt_attrs],
                          "is_match": [matches(t, spec) for t in tgt_attrs]})
        if split == "IND":
            rng = seeded_rng(seed, "mmeb", name, "train")
            folder = ImageFolder(base / "images", f"train/{name}")
            rows = list(_train_classify(train_rows, rng, folder) if name == "ShapeClassify"
                        else _train_retrieval(train_rows, rng, folder, gallery_size))
            table = pa.table({col: [r[j] for r in rows] for j, col in enumerate(TRAIN_SCHEMA.names)})
            write_parquet(table, base / f"train/{name}.parquet", TRAIN_SCHEMA)
            counts[f"mmeb/train/{name}.parquet"] = len(rows)
            counts[f"mmeb/images/train/{name}/"] = folder.count
    lines = ["dataset\tmeta_task\tsplit"] + ["\t".join(d) for d in DATASETS]
    counts["mmeb/eval/datasets.tsv"] = write_lines(base / "eval/datasets.tsv", lines) - 1
    return counts, truth
