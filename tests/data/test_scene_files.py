"""Object scenes in ObjEmbed's public formats (seed 002): exact boxes in every file, proposals covering every object,
one expression per eval object, SORCE queries with exactly one relevant image, byte-identical output per seed."""
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from uniembed.data.synthetic.scene_files import category, draw_split, write_object_scenes
from uniembed.data.synthetic.scenes import SCENE_SIZE, where

SEED, TRAIN, EVAL = 3, 6, 12


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    root = tmp_path_factory.mktemp("objects")
    counts = write_object_scenes(root, seed=SEED, train_scenes=TRAIN, eval_scenes=EVAL)
    return root, counts, {"train": draw_split(SEED, "train", TRAIN), "eval": draw_split(SEED, "eval", EVAL)}


def _digests(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _eval_proposals(root: Path) -> dict:
    return {k: v for k, v in json.loads((root / "proposals.json").read_text()).items() if k.startswith("images/eval/")}


def _iou(a, b) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_images_are_the_scenes_and_the_counts_add_up(written):
    root, counts, scenes = written
    expressions = sum(len(s.objects) for s in scenes["eval"])
    assert counts == {"train_scenes": TRAIN, "eval_scenes": EVAL, "expressions": expressions,
                      "local_queries": len((root / "sorce_eval.jsonl").read_text().splitlines())}
    for split, drawn in scenes.items():
        assert len(list((root / "images" / split).glob("*.png"))) == len(drawn)
        for n, scene in enumerate(drawn):
            with Image.open(root / f"images/{split}/{n}.png") as image:
                assert image.size == (SCENE_SIZE, SCENE_SIZE)
                assert np.array_equal(np.asarray(image), np.asarray(scene.image))


def test_train_lines_hold_every_object_with_its_phrase_exact_box_and_the_two_captions(written):
    root, _, scenes = written
    lines = [json.loads(line) for line in (root / "train.jsonl").open()]
    assert [line["image"] for line in lines] == [f"images/train/{n}.png" for n in range(TRAIN)]
    for line, scene in zip(lines, scenes["train"]):
        assert line["objects"] == [{"label": p, "bbox": list(o.box)} for o, p in zip(scene.objects, scene.phrases)]
        assert line["captions"] == {"short_caption": scene.short_caption, "long_caption": scene.long_caption}


def test_proposals_cover_every_object_of_every_image(written):
    root, _, scenes = written
    proposals = json.loads((root / "proposals.json").read_text())
    assert list(proposals) == [f"images/{s}/{n}.png" for s in ("train", "eval") for n in range(len(scenes[s]))]
    for split, drawn in scenes.items():
        for n, scene in enumerate(drawn):
            boxes = proposals[f"images/{split}/{n}.png"]
            assert len(boxes) == 20 and all(v == round(v, 2) for b in boxes for v in b)
            assert all(0 <= b[0] < b[2] <= SCENE_SIZE and 0 <= b[1] < b[3] <= SCENE_SIZE for b in boxes)
            for obj in scene.objects:
                assert max(_iou(obj.box, b) for b in boxes) > 0.5


def test_refexp_has_one_entry_and_one_exact_annotation_per_eval_object(written):
    root, _, scenes = written
    data = json.loads((root / "refexp_eval.json").read_text())
    assert data["categories"] == [{"id": 1, "name": "object"}]
    expected = [(n, o, p) for n, s in enumerate(scenes["eval"]) for o, p in zip(s.objects, s.phrases)]
    assert len(data["images"]) == len(data["annotations"]) == len(expected)
    assert {e["file_name"] for e in data["images"]} == {f"images/eval/{n}.png" for n in range(EVAL)}   # the gallery
    for entry, ann, (n, obj, phrase) in zip(data["images"], data["annotations"], expected):
        assert entry == {"file_name": f"images/eval/{n}.png", "height": SCENE_SIZE, "width": SCENE_SIZE,
                         "id": entry["id"], "caption": phrase, "dataset_name": "refcoco", "original_img_id": n}
        x1, y1, x2, y2 = obj.box
        assert ann == {"id": entry["id"], "image_id": entry["id"], "category_id": 1,
                       "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0}
    assert len({e["id"] for e in data["images"]}) == len(expected)


def test_each_sorce_query_names_an_object_whose_category_only_its_image_holds(written):
    root, _, scenes = written
    queries = [json.loads(line) for line in (root / "sorce_eval.jsonl").open()]
    holders = Counter(c for s in scenes["eval"] for c in {category(o) for o in s.objects})
    assert 0 < len(queries) <= EVAL and len({q["image"] for q in queries}) == len(queries)
    for query in queries:
        assert holders[query["caption"]] == 1
        n = int(Path(query["image"]).stem)
        obj = next(o for o in scenes["eval"][n].objects if category(o) == query["caption"])
        assert query["caption"] == f"a {obj.size} {obj.color} {obj.shape} {where(obj.box)}"
        assert query["bbox"] == [[obj.box[0], obj.box[1], obj.box[2] - obj.box[0], obj.box[3] - obj.box[1]]]
    missed = [n for n, s in enumerate(scenes["eval"]) if f"images/eval/{n}.png" not in {q["image"] for q in queries}]
    for n in missed:   # a scene gives no query only when none of its objects is unique to it
        assert all(holders[category(o)] > 1 for o in scenes["eval"][n].objects)


def test_the_same_seed_gives_byte_identical_files_and_the_splits_do_not_shift_each_other(written, tmp_path):
    root, _, _ = written
    write_object_scenes(tmp_path / "again", seed=SEED, train_scenes=TRAIN, eval_scenes=EVAL)
    assert _digests(tmp_path / "again") == _digests(root)
    write_object_scenes(tmp_path / "more_train", seed=SEED, train_scenes=TRAIN + 2, eval_scenes=EVAL)
    other = _digests(tmp_path / "more_train")
    mine = _digests(root)
    for name in ("refexp_eval.json", "sorce_eval.jsonl", *[f"images/eval/{n}.png" for n in range(EVAL)],
                 *[f"images/train/{n}.png" for n in range(TRAIN)]):
        assert other[name] == mine[name], name
    assert _eval_proposals(tmp_path / "more_train") == _eval_proposals(root)
    write_object_scenes(tmp_path / "seed", seed=SEED + 1, train_scenes=TRAIN, eval_scenes=EVAL)
    assert _digests(tmp_path / "seed")["train.jsonl"] != mine["train.jsonl"]


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="proposals_per_image"):
        write_object_scenes(tmp_path, seed=0, train_scenes=1, eval_scenes=1, proposals_per_image=0)
