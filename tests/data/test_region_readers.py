"""Readers of ObjEmbed's region formats (seed 002): the written scenes read back exactly, with shared image ids; bad
values quarantined with file, record, key and reason; structural errors raised with file and line; the Parquet
tables keep their schemas."""
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

from uniembed.data.errors import SourceFormatError
from uniembed.data.readers.region_tables import (LOCAL_QUERIES_SCHEMA, QUARANTINE_SCHEMA, REGION_IMAGES_SCHEMA,
                                                 REGION_OBJECTS_SCHEMA, region_table, write_region_tables)
from uniembed.data.readers.regions import read_objembed_train, read_refexp, read_sorce
from uniembed.data.synthetic.scene_files import draw_split, write_object_scenes

SEED, TRAIN, EVAL = 5, 6, 12


@pytest.fixture(scope="module")
def scenes_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("objects")
    write_object_scenes(root, seed=SEED, train_scenes=TRAIN, eval_scenes=EVAL)
    return root


@pytest.fixture
def bad_root(tmp_path):
    """A root with two images (40x30 and 20x20) and an image outside it."""
    root = tmp_path / "root"
    (root / "img").mkdir(parents=True)
    Image.new("RGB", (40, 30)).save(root / "img/a.png")
    Image.new("RGB", (20, 20)).save(root / "img/b.png")
    Image.new("RGB", (20, 20)).save(tmp_path / "outside.png")
    return root


def _lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def _reasons(quarantine):
    return {(q["record"], q["key"], q["reason"]) for q in quarantine}


def _train(image, objects, short="two things", long="two things, side by side"):
    return {"image": image, "objects": [{"label": label, "bbox": box} for label, box in objects],
            "captions": {"short_caption": short, "long_caption": long}}


def test_written_scenes_read_back_with_exact_boxes_and_shared_image_ids(scenes_root):
    train = draw_split(SEED, "train", TRAIN)
    images, quarantine = read_objembed_train(scenes_root / "train.jsonl", scenes_root / "proposals.json", scenes_root)
    assert quarantine == [] and [i["image_id"] for i in images] == [f"images/train/{n}.png" for n in range(TRAIN)]
    for image, scene in zip(images, train):
        assert (image["width"], image["height"]) == (112, 112) and len(image["proposals"]) == 20
        assert [(o["phrase"], o["box"]) for o in image["objects"]] == [
            (p, [float(v) for v in o.box]) for o, p in zip(scene.objects, scene.phrases)]
        assert image["short_caption"] == scene.short_caption and image["long_caption"] == scene.long_caption
    expressions, quarantine = read_refexp(scenes_root / "refexp_eval.json", scenes_root)
    eval_scenes = draw_split(SEED, "eval", EVAL)
    assert quarantine == [] and [(e["image_id"], e["phrase"], e["box"]) for e in expressions] == [
        (f"images/eval/{n}.png", p, [float(v) for v in o.box])
        for n, s in enumerate(eval_scenes) for o, p in zip(s.objects, s.phrases)]
    queries, quarantine = read_sorce(scenes_root / "sorce_eval.jsonl", scenes_root)
    boxes = {(e["image_id"], tuple(e["box"])) for e in expressions}
    assert quarantine == [] and queries
    for query in queries:   # the query's object is one of its image's expressions: ids and boxes agree
        assert query["boxes"] == [query["box"]] and (query["image_id"], tuple(query["box"])) in boxes


def test_objembed_train_quarantines_bad_objects_alone_and_bad_images_whole(bad_root, tmp_path):
    path = _lines(tmp_path / "train.jsonl", [
        _train("img/a.png", [("the red one", [1, 1, 10, 10]), ("the big one", [5, 5, 45, 25]),
                             ("the flat one", [5, 5, 5, 9]), (" ", [0, 0, 4, 4]), ("the edge", [-0.5, 0, 40.5, 30])]),
        _train("img/b.png", [("the only one", [0, 0, 25, 25])]),
        _train("img/missing.png", [("x", [0, 0, 1, 1])]),
        _train("../outside.png", [("x", [0, 0, 1, 1])]),
        _train("./img/b.png", [("x", [0, 0, 1, 1])], short=""),
        _train("img/../img/a.png", [("again", [0, 0, 1, 1])])])
    proposals = tmp_path / "proposals.json"
    proposals.write_text(json.dumps({"img/a.png": [[0, 0, 10, 10], [0, 0, 99, 99]], "img/gone.png": [[0, 0, 1, 1]]}))
    images, quarantine = read_objembed_train(path, proposals, bad_root)
    assert [(i["image_id"], i["width"], i["height"]) for i in images] == [("img/a.png", 40, 30)]
    assert [(o["object_id"], o["box"]) for o in images[0]["objects"]] == [
        ("img/a.png#0", [1.0, 1.0, 10.0, 10.0]), ("img/a.png#4", [0.0, 0.0, 40.0, 30.0])]   # clipped within 1 px
    assert images[0]["proposals"] == [[0.0, 0.0, 10.0, 10.0]]
    assert _reasons(quarantine) == {
        ("1:objects[1]", "bbox", "box_outside_image"), ("1:objects[2]", "bbox", "box_outside_image"),
        ("1:objects[3]", "label", "empty_phrase"), ("img/a.png", "[1]", "box_outside_image"),
        ("2", "image", "no_proposals"), ("3", "image", "missing_image"), ("4", "image", "path_outside_root"),
        ("5", "captions.short_caption", "empty_phrase"), ("6", "image", "duplicate_image_id")}
    assert all(q["file"] == str(path) for q in quarantine if q["record"] != "img/a.png")
    wide = next(q for q in quarantine if q["record"] == "1:objects[1]")
    assert wide["value"] == "[5.0, 5.0, 45.0, 25.0] in a 40x30 image"


def test_an_image_whose_every_object_is_bad_is_quarantined_as_no_objects(bad_root, tmp_path):
    path = _lines(tmp_path / "train.jsonl", [_train("img/b.png", [("x", [0, 0, 30, 30]), ("", [0, 0, 2, 2])])])
    (tmp_path / "p.json").write_text(json.dumps({"img/b.png": [[0, 0, 5, 5]]}))
    images, quarantine = read_objembed_train(path, tmp_path / "p.json", bad_root)
    assert images == [] and _reasons(quarantine) == {
        ("1:objects[0]", "bbox", "box_outside_image"), ("1:objects[1]", "label", "empty_phrase"),
        ("1", "objects", "no_objects")}


def test_sorce_converts_xywh_and_quarantines_bad_queries_and_bad_boxes_alone(bad_root, tmp_path):
    path = _lines(tmp_path / "sorce.jsonl", [
        {"image": "img/a.png", "caption": "a small red square", "bbox": [[2, 3, 10, 5]]},
        {"image": "img/a.png", "caption": "two squares", "bbox": [[0, 0, 5, 5], [10, 10, 5, 5]]},
        {"image": "img/b.png", "caption": "a large thing", "bbox": [[10, 10, 15, 15]]},
        {"image": "img/b.png", "caption": "a flat thing", "bbox": [[10, 10, 0, 4]]},
        {"image": "img/b.png", "caption": "  ", "bbox": [[1, 1, 2, 2]]},
        {"image": "img/none.png", "caption": "x", "bbox": [[1, 1, 2, 2]]},
        {"image": "../outside.png", "caption": "x", "bbox": [[1, 1, 2, 2]]},
        {"image": "img/c.png", "caption": "not an image"},
        {"image": "img/b.png", "caption": "the whole image"}])
    (bad_root / "img/c.png").write_bytes(b"not a png")
    queries, quarantine = read_sorce(path, bad_root)
    assert queries == [
        {"query_id": "sorce:1", "text": "a small red square", "image_id": "img/a.png", "boxes": [[2.0, 3.0, 12.0, 8.0]],
         "box": [2.0, 3.0, 12.0, 8.0]},
        {"query_id": "sorce:2", "text": "two squares", "image_id": "img/a.png",
         "boxes": [[0.0, 0.0, 5.0, 5.0], [10.0, 10.0, 15.0, 15.0]], "box": None},
        {"query_id": "sorce:3", "text": "a large thing", "image_id": "img/b.png", "boxes": [], "box": None},
        {"query_id": "sorce:4", "text": "a flat thing", "image_id": "img/b.png", "boxes": [], "box": None},
        {"query_id": "sorce:9", "text": "the whole image", "image_id": "img/b.png", "boxes": [], "box": None}]
    # a bad box is quarantined alone: retrieval never reads it, the query stays
    assert _reasons(quarantine) == {("3:bbox[0]", "bbox[0]", "box_outside_image"),
                                    ("4:bbox[0]", "bbox[0]", "box_outside_image"),
                                    ("5", "caption", "empty_phrase"), ("6", "image", "missing_image"),
                                    ("7", "image", "path_outside_root"), ("8", "image", "unreadable_image")}


def _refexp(entries, annotations):
    images = [{"file_name": f, "id": i, "caption": c, **({"width": w, "height": w} if w else {})}
              for f, i, c, w in entries]
    anns = [{"id": k, "image_id": i, "category_id": 1, "bbox": b, "area": 1, "iscrowd": 0}
            for k, (i, b) in enumerate(annotations)]
    return {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "object"}]}


def test_refexp_needs_exactly_one_annotation_per_expression_and_quarantines_bad_ones(bad_root, tmp_path):
    data = _refexp([("img/a.png", 10, "the left one", None), ("img/b.png", 11, "the right one", 100),
                    ("img/b.png", 12, "the twice one", None), ("img/b.png", 13, "the lonely one", None),
                    ("img/b.png", 14, "", None), ("img/x.png", 15, "the missing one", None),
                    ("../outside.png", 16, "the far one", None), ("img/a.png", 17, "the wide one", None)],
                   [(10, [1, 2, 3, 4]), (11, [50, 50, 30, 30]), (12, [0, 0, 1, 1]), (12, [1, 1, 1, 1]),
                    (99, [0, 0, 1, 1]), (14, [0, 0, 1, 1]), (15, [0, 0, 1, 1]), (16, [0, 0, 1, 1]),
                    (17, [10, 0, 35, 10])])
    (tmp_path / "refexp.json").write_text(json.dumps(data))
    expressions, quarantine = read_refexp(tmp_path / "refexp.json", bad_root)
    assert expressions == [{"expression_id": "10", "image_id": "img/a.png", "phrase": "the left one",
                            "box": [1.0, 2.0, 4.0, 6.0]},
                           {"expression_id": "11", "image_id": "img/b.png", "phrase": "the right one",
                            "box": [50.0, 50.0, 80.0, 80.0]}]   # inside the 100x100 the JSON gives
    assert _reasons(quarantine) == {
        ("annotations[4]", "image_id", "unknown_image_id"), ("images[2]", "id", "annotations_per_expression"),
        ("images[3]", "id", "annotations_per_expression"), ("images[4]", "caption", "empty_phrase"),
        ("images[5]", "file_name", "missing_image"), ("images[6]", "file_name", "path_outside_root"),
        ("images[7]", "bbox", "box_outside_image")}


@pytest.mark.parametrize("reader, name, text, expected", [
    ("train", "train.jsonl", '{"image": "img/a.png", "objects": [], "captions": {"short_caption": "a", '
     '"long_caption": "b"}}\n{"image": "img/a.png", "objects": [}\n', r"train\.jsonl:2: expected one complete"),
    ("train", "train.jsonl", '\n{"image": "img/a.png", "captions": {"short_caption": "a", "long_caption": "b"}}\n',
     r"train\.jsonl:2: expected 'objects'"),
    ("train", "train.jsonl", '{"image": "img/a.png", "objects": [{"label": "x", "bbox": [0, 0, 1]}], "captions": '
     '{"short_caption": "a", "long_caption": "b"}}\n', r"train\.jsonl:1: expected objects\[0\] 'bbox' as a list of 4"),
    ("sorce", "sorce.jsonl", '{"image": "img/a.png", "caption": 3, "bbox": []}\n',
     r"sorce\.jsonl:1: expected 'caption'"),
    ("sorce", "sorce.jsonl", '{"image": "img/a.png", "caption": "x", "bbox": [1, 2, 3, 4]}\n',
     r"sorce\.jsonl:1: expected bbox\[0\] as a list of 4 numbers"),
    ("refexp", "refexp.json", '{"images": [{"id": 1, "caption": "x"}], "annotations": []}',
     r"refexp\.json: expected images\[0\] 'file_name'"),
    ("refexp", "refexp.json", '{"images": [], "annotations": [{"id": 1, "image_id": "1", "bbox": [0, 0, 1, 1]}]}',
     r"refexp\.json: expected annotations\[0\] 'image_id' of type int"),
    ("refexp", "refexp.json", '[]', r"refexp\.json: expected a COCO-style refexp JSON object"),
])
def test_structural_errors_raise_naming_file_line_and_expectation(bad_root, tmp_path, reader, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    (tmp_path / "proposals.json").write_text(json.dumps({"img/a.png": [[0, 0, 1, 1]]}))
    with pytest.raises(SourceFormatError, match=expected):
        if reader == "train":
            read_objembed_train(path, tmp_path / "proposals.json", bad_root)
        elif reader == "sorce":
            read_sorce(path, bad_root)
        else:
            read_refexp(path, bad_root)


def test_malformed_proposals_raise(bad_root, tmp_path):
    path = _lines(tmp_path / "train.jsonl", [_train("img/a.png", [("x", [0, 0, 1, 1])])])
    (tmp_path / "p.json").write_text(json.dumps({"img/a.png": [[0, 0, 1]]}))
    with pytest.raises(SourceFormatError, match=r"p\.json: expected proposal 0 of 'img/a.png' as a list of 4"):
        read_objembed_train(path, tmp_path / "p.json", bad_root)


def test_tables_round_trip_with_their_schemas(scenes_root, bad_root, tmp_path):
    images, q1 = read_objembed_train(scenes_root / "train.jsonl", scenes_root / "proposals.json", scenes_root)
    expressions, q2 = read_refexp(scenes_root / "refexp_eval.json", scenes_root)
    queries, _ = read_sorce(scenes_root / "sorce_eval.jsonl", scenes_root)
    _, bad = read_sorce(_lines(tmp_path / "s.jsonl", [{"image": "../outside.png", "caption": "x"}]), bad_root)
    counts = write_region_tables(tmp_path / "out", images=images, objects=images + expressions, queries=queries,
                                 quarantine=q1 + q2 + bad)
    objects = sum(len(i["objects"]) for i in images) + len(expressions)
    assert counts == {"images.parquet": TRAIN, "objects.parquet": objects, "local_queries.parquet": len(queries),
                      "quarantine.parquet": 1}
    schemas = {"images.parquet": REGION_IMAGES_SCHEMA, "objects.parquet": REGION_OBJECTS_SCHEMA,
               "local_queries.parquet": LOCAL_QUERIES_SCHEMA, "quarantine.parquet": QUARANTINE_SCHEMA}
    tables = {name: pq.read_table(tmp_path / "out" / name) for name in schemas}
    for name, table in tables.items():
        assert table.schema.equals(schemas[name]), name
    rows = tables["images.parquet"].to_pylist()
    assert [r["image_id"] for r in rows] == [i["image_id"] for i in images]
    assert np.allclose(rows[0]["proposals"], images[0]["proposals"], atol=1e-4)   # float32
    objects_rows = tables["objects.parquet"].to_pylist()
    assert objects_rows[0] == {"image_id": "images/train/0.png", "object_id": "images/train/0.png#0",
                               "phrase": images[0]["objects"][0]["phrase"], "box": images[0]["objects"][0]["box"],
                               "kind": None}
    assert objects_rows[-1]["object_id"] == expressions[-1]["expression_id"]
    assert tables["local_queries.parquet"].to_pylist() == queries   # whole pixel boxes are exact in float32
    assert tables["quarantine.parquet"].to_pylist()[0]["reason"] == "path_outside_root"
    only = write_region_tables(tmp_path / "only", quarantine=[])
    assert only == {"quarantine.parquet": 0}
    assert [p.name for p in (tmp_path / "only").iterdir()] == ["quarantine.parquet"]


def test_a_row_missing_a_required_value_or_with_a_bad_box_is_refused():
    with pytest.raises(ValueError, match=r"objects\.parquet: row 1 has no value for the required column 'phrase'"):
        region_table([{"image_id": "a", "object_id": "1", "phrase": "x", "box": [0, 0, 1, 1]},
                      {"image_id": "a", "object_id": "2", "box": [0, 0, 1, 1]}],
                     REGION_OBJECTS_SCHEMA, "objects.parquet")
    with pytest.raises(ValueError, match=r"objects\.parquet: column 'box'"):
        region_table([{"image_id": "a", "object_id": "1", "phrase": "x", "box": [0, 0, 1]}], REGION_OBJECTS_SCHEMA,
                     "objects.parquet")
