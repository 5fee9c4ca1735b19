"""The zero-shot sets' readers on small files written in their public formats (Karpathy-split JSON of Flickr30K and
MSCOCO, SugarCrepe's per-type JSON): what they read, what they quarantine and why, and the structural errors that
name the file and the record."""
import json

import pytest
from PIL import Image

from uniembed.data.curate import finalize
from uniembed.data.errors import SourceFormatError
from uniembed.data.readers.zeroshot import I2T, T2I, read_karpathy, read_sugarcrepe


def _image(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (200, 30, 30)).save(path)


def _sentence(sentid, imgid, raw):
    return {"tokens": raw.lower().split(), "raw": raw, "imgid": imgid, "sentid": sentid}


@pytest.fixture
def coco(tmp_path):
    """dataset_coco.json with two test images (one caption empty), a train image, a missing test image file."""
    for name in ("COCO_val2014_000000000001.jpg", "COCO_val2014_000000000002.jpg", "COCO_train2014_000000000003.jpg"):
        _image(tmp_path / "images" / ("train2014" if "train" in name else "val2014") / name)
    images = [
        {"filepath": "val2014", "filename": "COCO_val2014_000000000001.jpg", "imgid": 0, "split": "test",
         "sentids": [10, 11], "cocoid": 1, "sentences": [_sentence(10, 0, "A red bus."), _sentence(11, 0, "A bus.")]},
        {"filepath": "val2014", "filename": "COCO_val2014_000000000002.jpg", "imgid": 1, "split": "test",
         "sentids": [12, 13], "cocoid": 2, "sentences": [_sentence(12, 1, "Two dogs."), _sentence(13, 1, "   ")]},
        {"filepath": "train2014", "filename": "COCO_train2014_000000000003.jpg", "imgid": 2, "split": "train",
         "sentids": [14], "cocoid": 3, "sentences": [_sentence(14, 2, "A cat.")]},
        {"filepath": "val2014", "filename": "COCO_val2014_000000000004.jpg", "imgid": 3, "split": "test",
         "sentids": [15], "cocoid": 4, "sentences": [_sentence(15, 3, "A kite.")]},
    ]
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path


def test_karpathy_test_split_gives_t2i_and_i2t_queries_over_their_pools(coco, tmp_path):
    records = read_karpathy("mscoco", coco, image_root=tmp_path / "images")
    curated = finalize(records, progress=False)
    queries = {q["query_id"]: q for q in curated.tables["queries"].to_pylist()}
    assert sorted(queries) == ["coco:caption:10:t2i", "coco:caption:11:t2i", "coco:caption:12:t2i",
                               "coco:image:0:i2t", "coco:image:1:i2t"]
    assert queries["coco:caption:10:t2i"]["positive_ids"] == ["coco:image:0"]
    assert queries["coco:caption:10:t2i"]["task_id"] == T2I and queries["coco:image:0:i2t"]["task_id"] == I2T
    assert queries["coco:image:0:i2t"]["positive_ids"] == ["coco:caption:10", "coco:caption:11"]
    assert queries["coco:image:1:i2t"]["positive_ids"] == ["coco:caption:12"]   # the blank caption is not one
    pools = curated.tables["pools"].to_pylist()
    assert sorted(p["candidate_id"] for p in pools if p["pool"] == "coco_t2i_test") == ["coco:image:0", "coco:image:1"]
    # every usable caption of the split stays in the i2t pool, the missing image's too (its own queries go)
    assert len([p for p in pools if p["pool"] == "coco_i2t_test"]) == 4
    assert "coco:caption:15:t2i" not in queries and "coco:image:3:i2t" not in queries
    reasons = {(r["record_id"], r["reason"]) for r in curated.tables["quarantine"].to_pylist()}
    assert ("coco:caption:13", "empty_text") in reasons                  # quarantined, not dropped
    assert any(rid.startswith("coco:image:3") for rid, _ in reasons)     # the missing image file, with its queries
    assert curated.summary["files"][str(coco)]["rows_in"] == curated.summary["kept"] + curated.summary["quarantined"]


def test_flickr30k_has_no_filepath_and_an_image_outside_the_root_is_quarantined(tmp_path):
    _image(tmp_path / "flickr" / "1000092795.jpg")
    images = [{"filename": "1000092795.jpg", "imgid": 0, "split": "test", "sentids": [0],
               "sentences": [_sentence(0, 0, "Two young guys with shaggy hair.")]},
              {"filename": "../../etc/passwd", "imgid": 1, "split": "test", "sentids": [1],
               "sentences": [_sentence(1, 1, "Not an image.")]}]
    path = tmp_path / "dataset_flickr30k.json"
    path.write_text(json.dumps({"images": images, "dataset": "flickr30k"}))
    curated = finalize(read_karpathy("flickr30k", path, image_root=tmp_path / "flickr"), progress=False)
    assert {q["query_id"] for q in curated.tables["queries"].to_pylist()} == {"flickr30k:caption:0:t2i",
                                                                                "flickr30k:image:0:i2t"}
    (row,) = curated.tables["quarantine"].to_pylist()
    assert row["reason"] == "path_outside_root" and "1 captions and both queries are left out" in row["detail"]


@pytest.mark.parametrize("content, expected", [
    ("{not json", "a Karpathy-split JSON object"),
    (json.dumps({"dataset": "coco"}), 'an "images" list'),
    (json.dumps({"images": [{"split": "test", "imgid": 0, "sentences": []}]}), "'filename' of type str"),
    (json.dumps({"images": [{"split": "test", "filename": "a.jpg", "imgid": "0", "sentences": []}]}),
     "'imgid' of type int"),
    (json.dumps({"images": [{"split": "test", "filename": "a.jpg", "imgid": 0, "sentences": [{"sentid": 1}]}]}),
     "each sentence's 'raw' of type str"),
])
def test_a_karpathy_file_of_another_structure_names_the_file_the_record_and_the_expectation(tmp_path, content,
                                                                                           expected):
    path = tmp_path / "dataset_coco.json"
    path.write_text(content)
    with pytest.raises(SourceFormatError, match=expected) as error:
        read_karpathy("mscoco", path)
    assert str(path) in str(error.value)


def test_sugarcrepe_entries_are_image_queries_with_their_caption_and_hard_negative(tmp_path):
    for name in ("000000397133.jpg", "000000037777.jpg"):
        _image(tmp_path / "val2017" / name)
    entries = {"0": {"filename": "000000397133.jpg", "caption": "A man is in a kitchen making pizzas.",
                     "negative_caption": "A man is in a kitchen making salads."},
               "1": {"filename": "000000037777.jpg", "caption": "A same text.", "negative_caption": "A same text."},
               "2": {"filename": "000000000000.jpg", "caption": "A missing image.", "negative_caption": "No image."}}
    path = tmp_path / "replace_obj.json"
    path.write_text(json.dumps(entries))
    curated = finalize(read_sugarcrepe("sugarcrepe", path, image_root=tmp_path / "val2017"), progress=False)
    (query,) = curated.tables["queries"].to_pylist()
    assert query["query_id"] == "sugarcrepe_replace_obj:0" and query["image_path"].endswith("000000397133.jpg")
    assert query["candidate_ids"] == ["sugarcrepe_replace_obj:0:positive", "sugarcrepe_replace_obj:0:negative"]
    assert query["positive_ids"] == ["sugarcrepe_replace_obj:0:positive"]
    texts = {c["candidate_id"]: c["text"] for c in curated.tables["candidates"].to_pylist()}
    assert texts[query["candidate_ids"][1]] == "A man is in a kitchen making salads."
    reasons = {r["record_id"]: r["reason"] for r in curated.tables["quarantine"].to_pylist()}
    assert reasons["sugarcrepe_replace_obj:1"] == "conflicting_labels"
    assert "sugarcrepe_replace_obj:2" in reasons   # the missing image file


def test_a_sugarcrepe_entry_without_its_negative_is_a_format_error(tmp_path):
    path = tmp_path / "add_att.json"
    path.write_text(json.dumps({"0": {"filename": "a.jpg", "caption": "x"}}))
    with pytest.raises(SourceFormatError, match=r"add_att.json:1: expected 'negative_caption' of type str"):
        read_sugarcrepe("sugarcrepe", path)
