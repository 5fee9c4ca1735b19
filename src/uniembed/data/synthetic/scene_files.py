"""Object scenes (:mod:`.scenes`) written in the public formats ObjEmbed (seed 002 §3.2, §4) trains and is evaluated
on, under ``root`` (e.g. ``resources/synthetic/objects/``)::

    images/train/<n>.png, images/eval/<n>.png   the scenes (SCENE_SIZE x SCENE_SIZE)
    train.jsonl          ObjEmbed's training format, one line per train scene:
                         {"image", "objects": [{"label": <referring phrase>, "bbox": [x1, y1, x2, y2]}],
                          "captions": {"short_caption", "long_caption"}}
    train_categories.jsonl  the same scenes labelled as a detection set: each object's category ("a small red
                         square"), true of every object of that kind (ObjEmbed trains on both kinds of set)
    proposals.json       {image relpath: [[x1, y1, x2, y2], ...]} for every train and eval image (2 decimals)
    refexp_eval.json     RefCOCO grounding in MDETR/GLIP's COCO-style refexp format: one image entry per referring
                         expression (one per object of every eval scene), its one annotation's bbox [x, y, w, h]
    sorce_eval.jsonl     local image retrieval in SORCE-1K's format: {"image", "caption", "bbox": [[x, y, w, h]]}
    eval_captions.jsonl  the eval scenes in the training format: their short and long captions are the global
                         retrieval's queries (caption to image, one global token each)

Boxes are the scenes' exact boxes, x2 and y2 exclusive (so w = x2 - x1). A SORCE query names one object by its
category (:func:`category`: size, colour, shape and where it sits); only an object whose category occurs in no other
eval scene may be a query, so each query has exactly one relevant image and SORCE's diagonal Recall@k is right; a
scene gets at most one query (drawn among its unique objects). As in SORCE-1K, the local-retrieval gallery is the
images the queries name (a scene without a unique object is in the grounding and global sets only). 648 categories
exist (72 kinds x 9 places), so most of 100 scenes get a query (91 at seed 0).

Train scenes, eval scenes, their proposals and the query choice each have a generator of their own
(:func:`~.world.seeded_rng`), so changing the train count leaves the eval files unchanged and the other way
round; the same seed gives byte-identical files.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from ...artifacts import atomic_path
from .scenes import SCENE_SIZE, Scene, draw_scene, proposals, where
from .world import save_png, seeded_rng, write_lines

COMPONENT = "object-scenes"
CATEGORY = {"id": 1, "name": "object"}


def draw_split(seed: int, split: str, count: int) -> list[Scene]:
    """The first ``count`` scenes of a split ("train" or "eval"): those :func:`write_object_scenes` writes."""
    rng = seeded_rng(seed, COMPONENT, split)
    return [draw_scene(rng) for _ in range(count)]


def _relpath(split: str, n: int) -> str:
    return f"images/{split}/{n}.png"


def _xywh(box: tuple[int, int, int, int]) -> list[int]:
    return [box[0], box[1], box[2] - box[0], box[3] - box[1]]


def _proposals(seed: int, split: str, scenes: list[Scene], count: int) -> dict[str, list[list[float]]]:
    rng = seeded_rng(seed, COMPONENT, split, "proposals")
    return {_relpath(split, n): [[round(float(v), 2) for v in box]
                                 for box in proposals([o.box for o in s.objects], rng, count)]
            for n, s in enumerate(scenes)}


def category(obj) -> str:
    """The object as a detection set labels it: size, colour, shape and where it sits ("a small red square at the top
    left"), true of any such object in any image (unlike a referring phrase, which is unique in its own image only)."""
    return f"a {obj.size} {obj.color} {obj.shape} {where(obj.box)}"


def train_lines(scenes: list[Scene], labels: str = "phrase", split: str = "train") -> list[str]:
    """ObjEmbed's training lines: every object with its exact box and its referring phrase (``labels="phrase"``, a
    RefCOCO-like set) or its category (``"category"``, a detection-like set), and the two captions."""
    if labels not in ("phrase", "category"):
        raise ValueError(f"labels must be 'phrase' or 'category', got {labels!r}")
    return [json.dumps({"image": _relpath(split, n),
                        "objects": [{"label": p if labels == "phrase" else category(o), "bbox": list(o.box)}
                                    for o, p in zip(s.objects, s.phrases)],
                        "captions": {"short_caption": s.short_caption, "long_caption": s.long_caption}})
            for n, s in enumerate(scenes)]


def refexp(scenes: list[Scene]) -> dict:
    """MDETR/GLIP refexp: per expression an image entry and its one annotation, sharing one id."""
    images, annotations = [], []
    for n, scene in enumerate(scenes):
        for obj, phrase in zip(scene.objects, scene.phrases):
            i = len(images)
            images.append({"file_name": _relpath("eval", n), "height": SCENE_SIZE, "width": SCENE_SIZE, "id": i,
                           "caption": phrase, "dataset_name": "refcoco", "original_img_id": n})
            x, y, w, h = _xywh(obj.box)
            annotations.append({"id": i, "image_id": i, "category_id": CATEGORY["id"], "bbox": [x, y, w, h],
                                "area": w * h, "iscrowd": 0})
    return {"images": images, "annotations": annotations, "categories": [CATEGORY]}


def sorce_lines(scenes: list[Scene], seed: int) -> list[str]:
    """SORCE-1K queries: per eval scene at most one object whose category no other eval scene holds."""
    scenes_with = Counter(t for s in scenes for t in {category(o) for o in s.objects})
    rng = seeded_rng(seed, COMPONENT, "sorce")
    lines = []
    for n, scene in enumerate(scenes):
        unique = [o for o in scene.objects if scenes_with[category(o)] == 1]
        if not unique:
            continue
        obj = unique[int(rng.integers(len(unique)))]
        lines.append(json.dumps({"image": _relpath("eval", n), "caption": category(obj),
                                 "bbox": [_xywh(obj.box)]}))
    return lines


def _write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data) + "\n", encoding="utf-8")


def write_object_scenes(root: str | Path, *, seed: int, train_scenes: int, eval_scenes: int,
                        proposals_per_image: int = 20) -> dict[str, int]:
    """Write the scenes, train.jsonl, train_categories.jsonl, proposals.json, refexp_eval.json and sorce_eval.jsonl under ``root``; return
    the counts (train and eval scenes, referring expressions, local queries)."""
    if train_scenes < 0 or eval_scenes < 0 or proposals_per_image < 1:
        raise ValueError(f"write_object_scenes: counts must be >= 0 and proposals_per_image >= 1, got train "
                         f"{train_scenes}, eval {eval_scenes}, proposals {proposals_per_image}")
    root = Path(root)
    splits = {"train": draw_split(seed, "train", train_scenes), "eval": draw_split(seed, "eval", eval_scenes)}
    boxes: dict[str, list[list[float]]] = {}
    for split, scenes in splits.items():
        for n, scene in enumerate(scenes):
            save_png(scene.image, root / _relpath(split, n))
        boxes.update(_proposals(seed, split, scenes, proposals_per_image))
    write_lines(root / "train.jsonl", train_lines(splits["train"]))
    write_lines(root / "train_categories.jsonl", train_lines(splits["train"], "category"))
    write_lines(root / "eval_captions.jsonl", train_lines(splits["eval"], "phrase", "eval"))
    _write_json(root / "proposals.json", boxes)
    grounding = refexp(splits["eval"])
    _write_json(root / "refexp_eval.json", grounding)
    queries = write_lines(root / "sorce_eval.jsonl", sorce_lines(splits["eval"], seed))
    return {"train_scenes": train_scenes, "eval_scenes": eval_scenes,
            "expressions": len(grounding["images"]), "local_queries": queries}
