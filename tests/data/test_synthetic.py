"""The synthetic shapes dataset: public formats, determinism, genuine hard and false negatives, exact truth."""
from __future__ import annotations

import csv
import hashlib
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from uniembed.data.synthetic import generate_synthetic
from uniembed.data.synthetic.generate import resolve_sizes
from uniembed.data.synthetic.world import (
    COLORS, ShapeObject, answer, caption, corpus, differing_attributes, genuine_match, matches, render,
    seeded_rng, wiki_text,
)

SMALL = {
    "mbeir_train_queries": 40, "mbeir_test_queries": 24, "mbeir_pool": 80, "mmeb_train_rows": 20,
    "mmeb_eval_rows": 16, "mmeb_candidates": 12, "mmeb_gallery": 40, "nli_triplets": 30, "caption_pairs": 20,
}
QUERY_FIELDS = {"qid": str, "query_txt": (str, type(None)), "query_img_path": (str, type(None)),
                "query_modality": str, "query_src_content": (str, type(None)), "pos_cand_list": list,
                "neg_cand_list": list, "task_id": int}
CAND_FIELDS = {"did": str, "txt": (str, type(None)), "img_path": (str, type(None)), "modality": str,
               "src_content": (str, type(None))}
TASK_IDS = {0, 1, 2, 3, 4, 6, 7}
# _labelled_fingerprint of SMALL, seed 0, from the world before second candidates were added: adding
# unlisted candidates must leave every labelled fact as it was (change it only with the labels).
LABELLED_FINGERPRINT = "0a1527d3e864b90328a5bc304e88f742bbf343991d4c90d8be3990dc7dbdbcf6"


@pytest.fixture(scope="session")
def root(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("synthetic") / "seed0"
    generate_synthetic(path, seed=0, sizes=SMALL)
    return path


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def mbeir(root):
    base = root / "mbeir"
    queries = {s: [q for f in sorted(base.glob(f"query/{s}/*.jsonl")) for q in _jsonl(f)] for s in ("train", "test", "val")}
    local = {split: {f.name: _jsonl(f) for f in sorted(base.glob("cand_pool/local/*.jsonl"))
                     if f.name.endswith("_val_cand_pool.jsonl") == (split == "val")} for split in ("test", "val")}
    union = {s: {c["did"]: c for c in _jsonl(base / f"cand_pool/global/mbeir_union_{s}_cand_pool.jsonl")}
             for s in ("train", "test", "val")}
    truth = pq.read_table(root / "truth/mbeir_truth.parquet").to_pylist()
    return {"queries": queries, "local": local, "union": union,
            "truth": {(t["split"], t["qid"]): t for t in truth}}


def _pool_of(query: dict, split: str, union: dict) -> dict:
    """The query's own pool: candidates of its dataset whose task produced the positive's modality."""
    dataset = query["qid"].split(":")[0]
    modality = union[split][query["pos_cand_list"][0]]["modality"]
    return {did: c for did, c in union[split].items() if did.split(":")[0] == dataset and c["modality"] == modality}


def _attrs(cand: dict) -> dict:
    return json.loads(cand["src_content"])


def _labelled_fingerprint(mbeir) -> str:
    """sha256 over every query's text, spec, and listed positive and negative attributes."""
    lines = []
    for split, queries in mbeir["queries"].items():
        if split == "val":      # drawn after train and test (the fingerprint predates it)
            continue
        union = mbeir["union"][split]
        for q in queries:
            lines.append(json.dumps([split, q["qid"], q["task_id"], q["query_txt"], q["query_src_content"],
                                     [union[d]["src_content"] for d in q["pos_cand_list"]],
                                     [union[d]["src_content"] for d in q["neg_cand_list"]]]))
    return hashlib.sha256("\n".join(sorted(lines)).encode()).hexdigest()


def test_same_seed_is_byte_identical_and_another_seed_differs(root, tmp_path):
    generate_synthetic(tmp_path / "again", seed=0, sizes=SMALL)
    generate_synthetic(tmp_path / "other", seed=1, sizes=SMALL)
    first, again, other = _files(root), _files(tmp_path / "again"), _files(tmp_path / "other")
    assert first == again and "truth/mbeir_truth.parquet" in first
    differing = {name for name in first if first[name] != other.get(name)}
    assert "mbeir/query/train/mbeir_shapecaption_train.jsonl" in differing
    assert any(name.endswith(".png") for name in differing)
    assert any(name.endswith(".parquet") for name in differing)


def test_mbeir_rows_have_public_fields_and_resolve(root, mbeir):
    base = root / "mbeir"
    for split, queries in mbeir["queries"].items():
        assert len({q["qid"] for q in queries}) == len(queries)
        for q in queries:
            assert list(q) == list(QUERY_FIELDS)
            assert all(isinstance(q[k], t) for k, t in QUERY_FIELDS.items())
            assert q["query_modality"] in ("text", "image", "image,text")
            assert (q["query_txt"] is not None) == ("text" in q["query_modality"])
            assert (q["query_img_path"] is not None) == ("image" in q["query_modality"])
            assert q["qid"].split(":")[1].isdigit() and len(q["pos_cand_list"]) == 1
            assert (split != "train") == (q["neg_cand_list"] == [])
            for did in q["pos_cand_list"] + q["neg_cand_list"]:
                assert did in mbeir["union"][split]
    for split in ("test", "val"):
        for name, pool in mbeir["local"][split].items():
            stem = name.replace("_val_cand_pool.jsonl" if split == "val" else "_cand_pool.jsonl", "")
            split_queries = _jsonl(base / f"query/{split}/{stem}_{split}.jsonl")
            dids = {c["did"] for c in pool}
            assert len(dids) == len(pool) and len({c["modality"] for c in pool}) == 1
            assert all(d in dids for q in split_queries for d in q["pos_cand_list"])
        assert sum(len(p) for p in mbeir["local"][split].values()) == len(mbeir["union"][split])
    for split in ("train", "test", "val"):
        for cand in mbeir["union"][split].values():
            assert list(cand) == list(CAND_FIELDS)
            assert all(isinstance(cand[k], t) for k, t in CAND_FIELDS.items())
            assert (cand["txt"] is not None) == ("text" in cand["modality"])
            assert (cand["img_path"] is not None) == ("image" in cand["modality"])
    for qrels in sorted(base.glob("qrels/*/*.txt")):
        split = qrels.parent.name
        for line in qrels.read_text().splitlines():
            qid, zero, did, rel, task = line.split()
            assert zero == "0" and rel == "1" and f"_task{task}_" in qrels.name and did in mbeir["union"][split]
    paths = {q["query_img_path"] for qs in mbeir["queries"].values() for q in qs} | {
        c["img_path"] for u in mbeir["union"].values() for c in u.values()}
    for rel in paths - {None}:
        assert rel.startswith("mbeir_images/")
        with Image.open(base / rel) as image:
            assert image.size == (56, 56) and image.mode == "RGB"
    with open(base / "instructions/query_instructions.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert list(rows[0]) == ["query_modality", "cand_modality", "dataset_name", "dataset_id",
                             "prompt_1", "prompt_2", "prompt_3", "prompt_4"]
    keys = {(r["dataset_id"], r["query_modality"], r["cand_modality"]) for r in rows}
    assert all(r[f"prompt_{i}"] for r in rows for i in range(1, 5))
    for split, queries in mbeir["queries"].items():
        for q in queries:
            cand_modality = mbeir["union"][split][q["pos_cand_list"][0]]["modality"]
            assert (q["qid"].split(":")[0], q["query_modality"], cand_modality) in keys


def _brute_force_truth(query: dict, split: str, union: dict) -> set[str]:
    """Every candidate of the split's union pool with the task's candidate modality that satisfies the
    query's spec; a text about the query's picture must also name nothing false about its object."""
    content = json.loads(query["query_src_content"])
    modality = union[split][query["pos_cand_list"][0]]["modality"]
    about = "image" in query["query_modality"] and modality == "text"
    return {did for did, c in union[split].items() if c["modality"] == modality
            and matches(_attrs(c), content["spec"]) and (not about or matches(content["object"], _attrs(c)))}


def test_truth_lists_every_genuine_match_in_the_union_pool(mbeir):
    assert len(mbeir["truth"]) == sum(len(qs) for qs in mbeir["queries"].values())
    for split, queries in mbeir["queries"].items():
        for q in queries:
            row = mbeir["truth"][(split, q["qid"])]
            assert row["task_id"] == q["task_id"]
            assert set(row["true_match_dids"]) == _brute_force_truth(q, split, mbeir["union"])
            assert len(set(row["true_match_dids"])) == len(row["true_match_dids"])
            assert set(q["pos_cand_list"]) <= set(row["true_match_dids"])
            assert not set(row["true_match_dids"]) & set(q["neg_cand_list"])


def test_genuine_match_checks_what_a_text_says_about_the_picture():
    large = ShapeObject("circle", "red", "large", "left")
    asked = {"color": "red", "shape": "circle"}
    assert genuine_match({"size": "large", "color": "red", "shape": "circle"}, asked, about=large)
    assert not genuine_match({"size": "small", "color": "red", "shape": "circle"}, asked, about=large)
    assert genuine_match({"size": "small", "color": "red", "shape": "circle"}, asked)  # a picture: spec only
    assert not genuine_match({"color": "red"}, asked, about=large)


def test_several_task_shapes_have_unlabelled_genuine_matches(mbeir):
    """Train queries whose truth holds a candidate that is not their listed positive, by task, split by
    whether it sits in another dataset's pool or in the query's own (a second candidate)."""
    other, own = defaultdict(int), defaultdict(int)
    for q in mbeir["queries"]["train"]:
        unlabelled = set(mbeir["truth"][("train", q["qid"])]["true_match_dids"]) - set(q["pos_cand_list"])
        dataset = q["qid"].split(":")[0]
        other[q["task_id"]] += any(d.split(":")[0] != dataset for d in unlabelled)
        own[q["task_id"]] += any(d.split(":")[0] == dataset for d in unlabelled)
    for task_id in (0, 1, 3, 4, 6, 7):  # the same object or caption in another dataset's pool
        assert other[task_id] >= 3, (task_id, dict(other))
    for task_id in (0, 1, 2, 3, 4, 6):  # partial captions; paraphrases, wiki entries, twins, answers
        assert own[task_id] >= 3, (task_id, dict(own))


def test_labelled_positives_are_the_first_listed_form(root, mbeir):
    """One listed positive per query, made from the query's target, in the listed (not second) form;
    the qrels say the same; and every labelled fact is as it was before second candidates existed."""
    qrels = defaultdict(list)
    for path in sorted((root / "mbeir/qrels").glob("*/*.txt")):
        for line in path.read_text().splitlines():
            qid, _, did, _, _ = line.split()
            qrels[(path.parent.name, qid)].append(did)
    assert qrels == {(split, q["qid"]): q["pos_cand_list"] for split, qs in mbeir["queries"].items() for q in qs}
    for split, queries in mbeir["queries"].items():
        for q in queries:
            content = json.loads(q["query_src_content"])
            positive = mbeir["union"][split][q["pos_cand_list"][0]]
            target = content["object"] if q["task_id"] == 0 else content["spec"]
            assert _attrs(positive) == target
            if q["task_id"] == 6:
                assert positive["txt"] == answer(target)
            elif q["task_id"] == 2:
                assert positive["txt"] == wiki_text(ShapeObject(**target))
            elif positive["modality"] == "text":
                assert positive["txt"] == caption(ShapeObject(**target))
    assert _labelled_fingerprint(mbeir) == LABELLED_FINGERPRINT


def test_hard_negatives_differ_in_exactly_one_attribute(mbeir):
    union = mbeir["union"]["train"]
    for q in mbeir["queries"]["train"]:
        assert 1 <= len(q["neg_cand_list"]) <= 2
        positive = _attrs(union[q["pos_cand_list"][0]])
        for did in q["neg_cand_list"]:
            assert len(differing_attributes(_attrs(union[did]), positive)) == 1
        if q["task_id"] == 7:  # the unedited reference object is a listed hard negative
            reference = json.loads(q["query_src_content"])["object"]
            assert any(_attrs(union[did]) == reference for did in q["neg_cand_list"])
    for q in mbeir["queries"]["test"]:  # test pools hold a one-attribute neighbour of every positive
        pool = _pool_of(q, "test", mbeir["union"])
        positive = _attrs(pool[q["pos_cand_list"][0]])
        assert any(len(differing_attributes(_attrs(c), positive)) == 1 for c in pool.values())


def test_mmeb_rows_positive_first_and_distractors_false(root):
    base = root / "mmeb"
    with open(base / "eval/datasets.tsv", newline="") as f:
        listed = list(csv.DictReader(f, delimiter="\t"))
    assert sorted(r["meta_task"] for r in listed) == ["Classification", "Grounding", "Retrieval", "VQA"]
    assert sorted(r["split"] for r in listed) == ["IND", "IND", "OOD", "OOD"]
    truth = defaultdict(list)
    for row in pq.read_table(root / "truth/mmeb_eval_truth.parquet").to_pylist():
        truth[row["dataset"]].append(row)
    for entry in listed:
        table = pq.read_table(base / f"eval/{entry['dataset']}.parquet")
        assert table.column_names == ["qry_text", "qry_img_path", "tgt_text", "tgt_img_path"]
        for row, facts in zip(table.to_pylist(), truth[entry["dataset"]], strict=True):
            assert ("<|image_1|>" in row["qry_text"]) == bool(row["qry_img_path"])
            assert len(row["tgt_text"]) == len(row["tgt_img_path"]) and 10 <= len(row["tgt_text"]) <= 16
            for text, path in zip(row["tgt_text"], row["tgt_img_path"]):
                assert ("<|image_1|>" in text) == bool(path)
                if path:
                    with Image.open(base / "images" / path) as image:
                        assert image.size == (56, 56)
            spec = json.loads(facts["query_spec"])
            targets = [json.loads(t) for t in facts["tgt_attrs"]]
            assert [matches(t, spec) for t in targets] == facts["is_match"] == [True] + [False] * (len(targets) - 1)
            # a hard distractor: wrong in exactly one of the attributes the query asks for
            assert any(sum(t.get(k) != v for k, v in spec.items()) == 1 for t in targets[1:])
    for entry in (r for r in listed if r["split"] == "IND"):
        for row in pq.read_table(base / f"train/{entry['dataset']}.parquet").to_pylist():
            assert list(row) == ["qry", "qry_image_path", "pos_text", "pos_image_path", "neg_text", "neg_image_path"]
            for text, path in ((row["qry"], row["qry_image_path"]), (row["pos_text"], row["pos_image_path"]),
                               (row["neg_text"], row["neg_image_path"])):
                assert ("<|image_1|>" in text) == bool(path)
                assert not path or (base / "images" / path).is_file()


def test_all_tasks_in_train_and_test(mbeir):
    for queries in mbeir["queries"].values():
        assert {q["task_id"] for q in queries} == TASK_IDS


def test_nli_and_caption_pairs(root):
    with open(root / "nli/nli_for_simcse.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["sent0", "sent1", "hard_neg"] and len(rows) == SMALL["nli_triplets"] + 1
    assert all(len(r) == 3 and len(set(r)) == 3 for r in rows[1:])
    assert any("," in r[1] for r in rows[1:])  # quoting is exercised
    lines = (root / "captions/captions.tsv").read_text().splitlines()
    assert lines[0] == "image\tcaption" and len(lines) == SMALL["caption_pairs"] + 1
    for line in lines[1:]:
        image, text = line.split("\t")
        assert image.startswith("images/") and text
        with Image.open(root / "captions" / image) as picture:
            assert picture.size == (56, 56)


def test_manifest_counts_and_corpus_covers_texts(root, mbeir):
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["seed"] == 0 and manifest["sizes"] == resolve_sizes(SMALL)
    for name, n in manifest["files"].items():
        if name.endswith((".jsonl", ".txt")):
            assert len((root / name).read_text().splitlines()) == n
    for folder, n in manifest["images"].items():
        assert len(list((root / folder).glob("*.png"))) == n
    texts = set(corpus(0))
    assert {"Yes", "No"} <= texts and sorted(corpus(0)) == sorted(texts)
    assert {q["query_txt"] for qs in mbeir["queries"].values() for q in qs} - {None} <= texts
    assert {c["txt"] for u in mbeir["union"].values() for c in u.values()} - {None} <= texts


def test_two_renderings_differ_slightly_and_show_the_colour():
    obj = ShapeObject("circle", "red", "large", "center")
    rng = seeded_rng(0, "test")
    a, b = (np.asarray(render(obj, rng), dtype=int) for _ in range(2))
    assert a.shape == (56, 56, 3) and not np.array_equal(a, b)
    assert np.abs(a[28, 28] - np.array(COLORS["red"])).max() <= 12


def test_unknown_size_names_are_rejected():
    with pytest.raises(ValueError, match="unknown synthetic dataset sizes"):
        resolve_sizes({"mbeir_pools": 3})


def test_the_val_split_is_drawn_last_and_changes_no_train_or_test_byte(root, tmp_path):
    """The held-out split that chooses the fusion weight: its own queries, qrels, local and global pools and
    truth; generating more or fewer val queries leaves every train and test file as it was."""
    base = root / "mbeir"
    val = [q for f in sorted(base.glob("query/val/*.jsonl")) for q in _jsonl(f)]
    assert len(val) == len(TASK_IDS) * resolve_sizes(SMALL)["mbeir_val_queries"]
    assert {q["task_id"] for q in val} == TASK_IDS
    union = {c["did"] for c in _jsonl(base / "cand_pool/global/mbeir_union_val_cand_pool.jsonl")}
    assert all(q["pos_cand_list"][0] in union for q in val)
    truth = pq.read_table(root / "truth/mbeir_truth.parquet").to_pylist()
    assert {t["qid"] for t in truth if t["split"] == "val"} == {q["qid"] for q in val}
    test_ids = {q["qid"] for f in base.glob("query/test/*.jsonl") for q in _jsonl(f)}
    assert not test_ids & {q["qid"] for q in val}

    generate_synthetic(tmp_path / "more_val", seed=0, sizes={**SMALL, "mbeir_val_queries": 7})
    mine, theirs = _files(root), _files(tmp_path / "more_val")
    kept = [name for name in mine if "val" not in Path(name).parts and "_val" not in name and name.endswith((".jsonl", ".txt"))]
    assert kept and all(mine[name] == theirs[name] for name in kept)


def test_the_zero_shot_split_is_unseen_and_its_negatives_are_what_their_files_say(root, mbeir):
    from uniembed.data.synthetic.generate import DEFAULT_SIZES
    from uniembed.data.synthetic.world import VALUES

    data = json.loads((root / "zeroshot/dataset_shapes2.json").read_text())
    images = data["images"]
    assert len(images) == DEFAULT_SIZES["zeroshot_images"] and {i["split"] for i in images} == {"test"}
    sentences = [s["raw"] for i in images for s in i["sentences"]]
    training = set((root / "captions/captions.tsv").read_text().splitlines()) | set(corpus(0))
    training |= {q["query_txt"] for qs in mbeir["queries"].values() for q in qs}
    assert not set(sentences) & training   # no zero-shot caption is a training text
    colors = set(VALUES["color"])
    crepe = {kind: json.loads((root / f"zeroshot/sugarcrepe/{kind}.json").read_text())
             for kind in ("replace_att", "swap_att", "add_obj")}
    for n, image in enumerate(images):
        first = image["sentences"][0]["raw"]
        a, b = first.split(" and ")
        assert image["sentences"][1]["raw"] == f"{b} and {a}"
        with Image.open(root / "zeroshot" / image["filepath"] / image["filename"]) as picture:
            assert picture.size == (56, 56)
        entries = {kind: crepe[kind][str(n)] for kind in crepe}
        assert all(e["caption"] == first and e["filename"] == image["filename"] for e in entries.values())
        words, swapped = first.split(), entries["swap_att"]["negative_caption"].split()
        changed = [(x, y) for x, y in zip(words, swapped) if x != y]
        assert len(changed) == 2 and changed[0] == changed[1][::-1] and set(changed[0]) <= colors  # colours swapped
        replaced = entries["replace_att"]["negative_caption"].split()
        (old, new), = [(x, y) for x, y in zip(words, replaced) if x != y]
        assert old in colors and new in colors and new not in words   # a colour no object has
        assert entries["add_obj"]["negative_caption"].startswith(first + " and ")
