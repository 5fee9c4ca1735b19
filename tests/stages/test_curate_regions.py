"""Stage curate_regions: a region set's public files -> the canonical training and evaluation tables."""
import json

import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from uniembed.data.synthetic.scene_files import category, draw_split, write_object_scenes
from uniembed.stages.curate_regions import run

SPEC = {"proposals": "proposals.json", "grounding": "refexp_eval.json", "local_retrieval": "sorce_eval.jsonl",
        "global_retrieval": "eval_captions.jsonl",
        "train": [{"file": "train.jsonl", "labels": "phrase"}, {"file": "train_categories.jsonl", "labels": "category"}]}


def _cfg(root, out):
    return OmegaConf.create({"data": {"regions": {"objects": {"root": str(root), **SPEC}}},
                             "stage": {"name": "objects", "out_dir": str(out)}})


@pytest.fixture
def scene_set(tmp_path):
    counts = write_object_scenes(tmp_path / "objects", seed=3, train_scenes=6, eval_scenes=30)
    return tmp_path / "objects", counts


def test_the_tables_hold_every_object_both_labels_and_the_captioned_gallery(scene_set, tmp_path):
    root, counts = scene_set
    run(_cfg(root, tmp_path / "out"))
    train = pq.read_table(tmp_path / "out" / "train" / "images.parquet").to_pylist()
    objects = pq.read_table(tmp_path / "out" / "train" / "objects.parquet").to_pylist()
    scenes = draw_split(3, "train", 6)
    assert len(train) == 6 and all(r["image_path"] == str(root / r["image_id"]) for r in train)
    assert len(objects) == 2 * sum(len(s.objects) for s in scenes)
    first = [o for o in objects if o["image_id"] == "images/train/0.png"]
    assert [o["phrase"] for o in first if o["kind"] == "phrase"] == scenes[0].phrases
    assert [o["phrase"] for o in first if o["kind"] == "category"] == [category(o) for o in scenes[0].objects]
    gallery = pq.read_table(tmp_path / "out" / "eval" / "images.parquet").to_pylist()
    assert len(gallery) == 30 and all(g["short_caption"] and g["long_caption"] and len(g["proposals"]) == 20
                                      for g in gallery)
    assert pq.read_table(tmp_path / "out" / "eval" / "objects.parquet").num_rows == counts["expressions"]
    queries = pq.read_table(tmp_path / "out" / "eval" / "local_queries.parquet").to_pylist()
    assert len(queries) == counts["local_queries"]
    assert {g["image_id"] for g in gallery if g["local_gallery"]} == {q["image_id"] for q in queries}
    assert pq.read_table(tmp_path / "out" / "eval" / "quarantine.parquet").num_rows == 0


def test_an_eval_image_without_proposals_takes_its_expressions_into_quarantine(scene_set, tmp_path):
    root, counts = scene_set
    proposals = json.loads((root / "proposals.json").read_text())
    del proposals["images/eval/4.png"]
    (root / "proposals.json").write_text(json.dumps(proposals))
    lost = len(draw_split(3, "eval", 30)[4].objects)
    (root / "sorce_eval.jsonl").write_text("")   # only the grounding file names the image now
    run(_cfg(root, tmp_path / "out"))
    quarantine = pq.read_table(tmp_path / "out" / "eval" / "quarantine.parquet").to_pylist()
    assert [q["reason"] for q in quarantine].count("image_quarantined") == lost
    assert sorted(q["file"].rsplit("/", 1)[1] for q in quarantine if q["reason"] == "no_proposals") == [
        "eval_captions.jsonl", "proposals.json"]   # the captions' reader and the gallery each report it
    assert pq.read_table(tmp_path / "out" / "eval" / "objects.parquet").num_rows == counts["expressions"] - lost


def test_too_many_bad_records_fail_the_stage_naming_the_file(scene_set, tmp_path):
    root, _ = scene_set
    lines = (root / "train.jsonl").read_text().splitlines()
    bad = json.loads(lines[0])
    bad["objects"] = [{"label": "", "bbox": o["bbox"]} for o in bad["objects"]]
    (root / "train.jsonl").write_text("\n".join([json.dumps(bad)] + lines[1:]) + "\n")
    with pytest.raises(SystemExit, match="train.jsonl: .* quarantined"):
        run(_cfg(root, tmp_path / "out"))
    with pytest.raises(SystemExit, match="must be a region set"):
        run(OmegaConf.create({"data": {}, "stage": {"name": "objects", "out_dir": str(tmp_path)}}))
