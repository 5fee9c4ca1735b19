"""The identity training split (VisME supplement Table 6's meta-tasks, on identities of their own) written in the
M-BEIR (UniIR) layout under ``<root>/identity/``, curated like any M-BEIR source::

    query/train/mbeir_identity<task>_train.jsonl        one file per meta-task (datasets 10..13)
    cand_pool/global/mbeir_union_train_cand_pool.jsonl  every rendering of every meta-task
    qrels/train/mbeir_identity<task>_task<id>_train_qrels.txt
    instructions/query_instructions.tsv                 the meta-task's instruction, as the evaluation asks it
    mbeir_images/identity<task>/00000.png ...

The queries are the four meta-tasks of :mod:`.identity_tasks` built on identities the evaluation and the t-SNE never
show (:func:`~.identity_tasks.held_out_keys`): recognition and re-identification are M-BEIR task 4 (image ->
image), grounding and editing task 7 ((image, text) -> image, the text in ``query_txt``).

**Every identity is asked about once in the whole split**: each meta-task has identities of its own, and a query
lists one of its targets (drawn at random) as its positive. In-batch negatives therefore never show the query's own
identity (the trainer only masks a candidate equal to the query's positive, so two records of one identity in a batch
would push that identity's pictures apart). Its :data:`NEGATIVES` hard negatives in ``neg_cand_list`` are that
target's rendering (same view, same edit) of as many of its look-alikes (where a look-alike has that rendering), which
share its shape, colour and size and differ only in the mark: the positive and its negatives differ in the mark alone.
``src_content`` names the identity each picture shows and its key (shape, colour, mark): the generator's truth.
"""
from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path

from .identity import Identity, draw_identities
from .identity_tasks import BUILDERS, INSTRUCTIONS, IdentityTask, held_out_keys
from .mbeir import INSTRUCTION_HEADER
from .world import SHAPES, COLORS, ImageFolder, seeded_rng, write_lines

NEGATIVES = 3
#: meta-task -> (M-BEIR dataset id, task id, query modality)
DATASETS = {"recognition": (10, 4, "image"), "reidentification": (11, 4, "image"),
            "grounding": (12, 7, "image,text"), "editing": (13, 7, "image,text")}


def training_identities(seed: int, per_group: int) -> dict[str, list[Identity]]:
    """Per meta-task, ``per_group`` identities in every look-alike group (all shape-colour pairs): disjoint across the
    meta-tasks, none the evaluation's or the t-SNE's."""
    drawn = draw_identities(seed, len(SHAPES) * len(COLORS), per_group * len(BUILDERS), exclude=held_out_keys())
    names = list(BUILDERS)
    return {name: [i for i in drawn if int(i.identity_id.rsplit("-", 1)[1]) % len(names) == t]
            for t, name in enumerate(names)}


def rendering(picture_id: str) -> str:
    """What a picture of a meta-task's gallery shows of its identity, without the identity: ``cross-red-003:
    reidentification8-scaled`` -> ``reidentification-scaled``, ``...:edited-blue`` -> ``edited-blue``."""
    return re.sub(r"\d+", "", picture_id.split(":", 1)[1])


def look_alike_negatives(pictures_of: dict[str, list[str]], identities: list[Identity], query: dict, target: str,
                         rng) -> list[str]:
    """:data:`NEGATIVES` pictures of ``query``'s look-alikes (same group, another mark), in random order: each in
    ``target``'s rendering where that look-alike has one (``pictures_of``: identity -> its gallery pictures;
    re-identification's targets vary in number), then, to fill up, the first picture of the look-alikes left."""
    mine = next(i for i in identities if i.identity_id == query["identity_id"])
    alikes = [i.identity_id for i in identities if i.group == mine.group and i.identity_id != mine.identity_id]
    pictures = {other: pictures_of[other] for other in alikes}
    order = [alikes[k] for k in rng.permutation(len(alikes))]
    same = [next(p for p in pictures[o] if rendering(p) == rendering(target)) for o in order
            if any(rendering(p) == rendering(target) for p in pictures[o])]
    fill = [pictures[o][0] for o in order if not any(rendering(p) == rendering(target) for p in pictures[o])]
    return (same + fill)[:NEGATIVES]


def _write_task(base: Path, name: str, task: IdentityTask, identities: list[Identity], seed: int,
                counts: dict) -> list[dict]:
    dataset_id, task_id, modality = DATASETS[name]
    images = ImageFolder(base, f"mbeir_images/identity{name}")
    rng = seeded_rng(seed, "identity-train", name, "negatives")
    did = {pid: f"{dataset_id}:{n}" for n, pid in enumerate(task.gallery)}
    key = {i.identity_id: [i.shape, i.color, list(i.mark)] for i in identities}
    candidates = [{"did": did[pid], "txt": None, "img_path": images.add(image), "modality": "image",
                   "src_content": json.dumps({"identity": task.shows[pid], "key": key[task.shows[pid]], "picture": pid})}
                  for pid, image in task.gallery.items()]
    pictures_of = defaultdict(list)
    for pid, identity in task.shows.items():
        pictures_of[identity].append(pid)
    queries = []
    for n, q in enumerate(task.queries):   # one target: its negatives are the look-alikes in its rendering
        target = q["positives"][int(rng.integers(len(q["positives"])))]
        queries.append({"qid": f"{dataset_id}:{n}", "query_txt": q["text"], "query_img_path": images.add(q["image"]),
                        "query_modality": modality,
                        "query_src_content": json.dumps({"identity": q["identity_id"], "key": key[q["identity_id"]],
                                                         "meta_task": name}),
                        "pos_cand_list": [did[target]],
                        "neg_cand_list": [did[p] for p in look_alike_negatives(pictures_of, identities, q, target, rng)],
                        "task_id": task_id})
    stem = f"identity{name}"
    counts[f"identity/query/train/mbeir_{stem}_train.jsonl"] = write_lines(
        base / f"query/train/mbeir_{stem}_train.jsonl", [json.dumps(q) for q in queries])
    qrels = [f"{q['qid']} 0 {p} 1 {task_id}" for q in queries for p in q["pos_cand_list"]]
    counts[f"identity/qrels/train/mbeir_{stem}_task{task_id}_train_qrels.txt"] = write_lines(
        base / f"qrels/train/mbeir_{stem}_task{task_id}_train_qrels.txt", qrels)
    counts[f"identity/mbeir_images/{stem}/"] = images.count
    return candidates


def write_identity_train(root: str | Path, *, seed: int, per_group: int) -> dict[str, int]:
    """Write the identity training split under ``<root>/identity``; return lines (PNGs) per file (folder)."""
    base = Path(root) / "identity"
    identities = training_identities(seed, per_group)
    counts: dict[str, int] = {}
    pool = []
    for name, build in BUILDERS.items():
        pool += _write_task(base, name, build(identities[name], seed), identities[name], seed, counts)
    union = "cand_pool/global/mbeir_union_train_cand_pool.jsonl"
    counts[f"identity/{union}"] = write_lines(base / union, [json.dumps(c) for c in pool])
    rows = ["\t".join(INSTRUCTION_HEADER)] + [
        "\t".join([modality, "image", f"Identity{name.capitalize()}", str(dataset_id), INSTRUCTIONS[name]])
        for name, (dataset_id, _, modality) in DATASETS.items()]
    counts["identity/instructions/query_instructions.tsv"] = write_lines(
        base / "instructions/query_instructions.tsv", rows) - 1
    return counts
