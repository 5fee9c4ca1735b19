"""The long-caption readers on small files written in their public formats (ShareGPT4V's conversation JSON, Urban1K's
image/ and caption/ folders): the t2i and i2t queries they make, what they quarantine and why, the structural errors
that name the file and the record, and rows_in counting every record."""
import json
import os

import pytest
from PIL import Image

from uniembed.data.curate import finalize
from uniembed.data.errors import SourceFormatError
from uniembed.data.readers import FORMATS
from uniembed.data.readers.longcaption import read_sharegpt4v, read_urban1k
from uniembed.data.readers.zeroshot import I2T, T2I


def _image(path, fmt="JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (30, 90, 200)).save(path, format=fmt)


def _entry(key, image, caption):
    turns = [{"from": "human", "value": "<image>\nDescribe the image in detail."}]
    if caption is not None:
        turns.append({"from": "gpt", "value": caption})
    return {"id": key, "image": image, "conversations": turns}


def _tables(curated):
    queries = {q["query_id"]: q for q in curated.tables["queries"].to_pylist()}
    reasons = {r["record_id"]: r["reason"] for r in curated.tables["quarantine"].to_pylist()}
    return queries, reasons


def test_sharegpt4v_first_entries_give_t2i_and_i2t_queries_and_bad_entries_are_quarantined(tmp_path):
    _image(tmp_path / "data" / "coco" / "train2017" / "000000000009.jpg")
    _image(tmp_path / "data" / "sam" / "sa_1.jpg")
    _image(tmp_path / "outside.jpg")
    entries = [_entry("000000000009", "coco/train2017/000000000009.jpg", "A lunch box.\n\nIt holds bread."),
               _entry("sa_1", "sam/sa_1.jpg", None),                      # no gpt turn: an empty caption
               _entry(7, "../outside.jpg", "Not under the image root."),
               _entry("beyond", "coco/train2017/000000000009.jpg", "Past the limit.")]
    path = tmp_path / "share-captioner.json"
    path.write_text(json.dumps(entries))
    records = read_sharegpt4v("sharegpt4v", path, image_root=tmp_path / "data", limit=3)
    assert records.notes["entries_not_read"] == 1
    curated = finalize(records, progress=False)
    queries, reasons = _tables(curated)
    assert sorted(queries) == ["sharegpt4v:caption:000000000009:t2i", "sharegpt4v:image:000000000009:i2t"]
    t2i, i2t = queries["sharegpt4v:caption:000000000009:t2i"], queries["sharegpt4v:image:000000000009:i2t"]
    assert t2i["text"] == "A lunch box.  It holds bread." and t2i["original_text"] == "A lunch box.\n\nIt holds bread."
    assert (t2i["task_id"], t2i["positive_ids"], t2i["pool"]) == (T2I, ["sharegpt4v:image:000000000009"],
                                                                  "sharegpt4v_t2i_test")
    assert (i2t["task_id"], i2t["positive_ids"], i2t["pool"]) == (I2T, ["sharegpt4v:caption:000000000009"],
                                                                  "sharegpt4v_i2t_test")
    assert i2t["image_path"].endswith("coco/train2017/000000000009.jpg") and i2t["modality"] == "image"
    assert reasons == {"sharegpt4v:caption:sa_1": "empty_text", "sharegpt4v:image:sa_1:i2t": "no_positive",
                       "sharegpt4v:image:7": "path_outside_root"}
    pools = curated.tables["pools"].to_pylist()
    assert sorted(p["candidate_id"] for p in pools if p["pool"] == "sharegpt4v_t2i_test") == [
        "sharegpt4v:image:000000000009", "sharegpt4v:image:sa_1"]
    row = curated.summary["files"][str(path)]
    assert row["rows_in"] == 4 + 3 + 1 == row["kept"] + row["quarantined"]   # image, caption, t2i, i2t per entry


def test_sharegpt4v_is_a_registered_format_reading_1000_entries_by_default(tmp_path):
    _image(tmp_path / "a.jpg")
    path = tmp_path / "share.json"
    path.write_text(json.dumps([_entry(i, "a.jpg", f"Caption {i}.") for i in range(1002)]))
    records = FORMATS["sharegpt4v"]("sharegpt4v", path=str(path))
    assert records.notes["entries_not_read"] == 2 and records.rows_in[str(path)] == 4000


@pytest.mark.parametrize("content, expected", [
    ("[{not json", "a ShareGPT4V JSON list of entries"),
    (json.dumps({"id": 1}), "a ShareGPT4V JSON list of entries; found dict"),
    (json.dumps([_entry(1, "a.jpg", "x"), {"id": 2, "conversations": []}]), ":2: expected 'image' of type str"),
    (json.dumps([{"id": [1], "image": "a.jpg", "conversations": []}]), ":1: expected 'id' of type str or int"),
    (json.dumps([{"id": 1, "image": "a.jpg", "conversations": "gpt"}]), ":1: expected 'conversations' of type list"),
    (json.dumps([{"id": 1, "image": "a.jpg", "conversations": [{"from": "gpt"}]}]),
     ":1: expected each turn's 'value' of type str; found no such key"),
])
def test_a_sharegpt4v_file_of_another_structure_names_the_file_and_the_record(tmp_path, content, expected):
    path = tmp_path / "share.json"
    path.write_text(content)
    with pytest.raises(SourceFormatError, match=expected) as error:
        read_sharegpt4v("sharegpt4v", path)
    assert str(path) in str(error.value)


@pytest.fixture
def urban(tmp_path):
    """Urban1k with pairs 1 and 10 (10's caption has a second line), 2 (empty caption), 3 (no caption), 4 (no image),
    5 (an image symlinked out of the root) and a hidden file."""
    root = tmp_path / "Urban1k"
    for stem in (1, 2, 3, 10):
        _image(root / "image" / f"{stem}.jpg")
    _image(tmp_path / "elsewhere.jpg")
    os.symlink(tmp_path / "elsewhere.jpg", root / "image" / "5.jpg")
    (root / "caption").mkdir()
    for stem, text in {1: "A busy street at dusk with taxis.\n", 2: "  \n", 4: "An orphan caption.",
                       5: "Outside.", 10: "A tram crossing a bridge.\nA second line.\n"}.items():
        (root / "caption" / f"{stem}.txt").write_text(text)
    (root / "caption" / ".DS_Store").write_bytes(b"\x00\x01")
    return root


def test_urban1k_pairs_images_and_captions_by_stem_and_quarantines_the_unpaired(urban):
    records = read_urban1k("urban1k", urban)
    assert records.notes["caption_files_with_more_lines"] == 1
    curated = finalize(records, progress=False)
    queries, reasons = _tables(curated)
    assert sorted(queries) == ["urban1k:caption:10:t2i", "urban1k:caption:1:t2i", "urban1k:image:10:i2t",
                               "urban1k:image:1:i2t"]
    assert queries["urban1k:caption:10:t2i"]["text"] == "A tram crossing a bridge."    # the first line, as Long-CLIP
    assert queries["urban1k:caption:10:t2i"]["positive_ids"] == ["urban1k:image:10"]
    assert queries["urban1k:caption:10:t2i"]["source_line"] == 6                         # stems in numeric order
    assert queries["urban1k:image:1:i2t"]["positive_ids"] == ["urban1k:caption:1"]
    assert reasons == {"urban1k:caption:2": "empty_text", "urban1k:image:2:i2t": "no_positive",
                       "urban1k:3": "missing_caption", "urban1k:4": "missing_image",
                       "urban1k:image:5": "path_outside_root"}
    row = curated.summary["files"][str(urban)]
    assert row["rows_in"] == 4 + 3 + 1 + 1 + 1 + 4 == row["kept"] + row["quarantined"]


def test_an_urban1k_copy_without_its_caption_folder_or_with_a_non_utf8_caption_is_a_format_error(urban):
    (urban / "caption" / "1.txt").write_bytes(b"\xff\xfe caption")
    with pytest.raises(SourceFormatError, match=r"1\.txt:1: expected a readable UTF-8 caption file"):
        read_urban1k("urban1k", urban)
    for name in os.listdir(urban / "caption"):
        os.remove(urban / "caption" / name)
    os.rmdir(urban / "caption")
    with pytest.raises(SourceFormatError, match=r"caption: expected the Urban1K caption/ folder; found no such folder"):
        read_urban1k("urban1k", urban)
