"""The composed image retrieval readers on small files written in their public formats (CIRCO's annotations and COCO
unlabeled image info, CIRR's captions and image splits, FashionIQ's captions and image splits): the (image, text) ->
image queries, their positives and pools, what they quarantine and why, the structural errors that name the file
and the record, and rows_in counting every record."""
import json

import pytest
from PIL import Image

from uniembed.data.curate import finalize
from uniembed.data.errors import SourceFormatError
from uniembed.data.readers import FORMATS
from uniembed.data.readers.composed import fashioniq_text, read_circo, read_cirr, read_fashioniq
from uniembed.data.readers.retrieval import COMPOSED
from uniembed.data.schemas import TASKS


def _image(path, fmt="JPEG"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (120, 200, 40)).save(path, format=fmt)


def _write(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def _curate(records):
    curated = finalize(records, progress=False)
    queries = {q["query_id"]: q for q in curated.tables["queries"].to_pylist()}
    reasons = {r["record_id"]: r["reason"] for r in curated.tables["quarantine"].to_pylist()}
    pools = {}
    for row in curated.tables["pools"].to_pylist():
        pools.setdefault(row["pool"], set()).add(row["candidate_id"])
    return curated, queries, reasons, pools


def _rows(curated, path):
    row = curated.summary["files"][str(path)]
    assert row["rows_in"] == row["kept"] + row["quarantined"]
    return row["rows_in"]


def test_task_7_is_m_beirs_image_text_to_image():
    assert TASKS[COMPOSED] == ("image,text", "image")


# --- CIRCO -----------------------------------------------------------------------------------------------------
def _circo(root, gallery_ids=None):
    for image_id in (1, 2, 3, 4, 5, 6):
        _image(root / "COCO2017_unlabeled" / "unlabeled2017" / f"{image_id:012d}.jpg")
    annotations = [
        {"id": 0, "reference_img_id": 1, "target_img_id": 2, "relative_caption": "has two dogs instead of one",
         "shared_concept": "a dog", "gt_img_ids": [2, 3, 2]},
        {"id": 1, "reference_img_id": 4, "target_img_id": 5, "relative_caption": "is at night",
         "shared_concept": "a street", "gt_img_ids": [6]},                       # the target is no positive
        {"id": 2, "reference_img_id": 1, "target_img_id": 2, "relative_caption": "   ",
         "shared_concept": "a dog", "gt_img_ids": [2]}]                          # an empty caption
    if gallery_ids is not None:
        _write(root / "COCO2017_unlabeled" / "annotations" / "image_info_unlabeled2017.json",
               {"images": [{"id": i, "file_name": f"{i:012d}.jpg", "width": 8, "height": 8} for i in gallery_ids]})
    return _write(root / "annotations" / "val.json", annotations)


def test_circo_queries_have_every_gt_image_as_positive_over_the_referenced_images(tmp_path):
    path = _circo(tmp_path / "CIRCO")
    records = read_circo("circo", tmp_path / "CIRCO")
    assert records.notes["gallery"] == "the images the annotations reference"
    curated, queries, reasons, pools = _curate(records)
    (query,) = queries.values()
    assert query["query_id"] == "circo:val:0" and query["task_id"] == COMPOSED and query["modality"] == "image,text"
    assert query["text"] == "has two dogs instead of one" and query["image_path"].endswith("000000000001.jpg")
    assert query["positive_ids"] == ["circo:image:2", "circo:image:3"] and query["pool"] == "circo_val"
    assert pools == {"circo_val": {f"circo:image:{i}" for i in (1, 2, 3, 4, 6)}}
    assert reasons == {"circo:val:1": "conflicting_labels", "circo:val:2": "empty_text"}
    assert _rows(curated, path) == 5 + 3                     # each referenced image once, and the three queries


def test_circo_with_coco_image_info_uses_the_whole_gallery_and_quarantines_unknown_ids(tmp_path):
    path = _circo(tmp_path / "CIRCO", gallery_ids=[1, 2, 3, 5, 6])
    info = tmp_path / "CIRCO" / "COCO2017_unlabeled" / "annotations" / "image_info_unlabeled2017.json"
    curated, queries, reasons, pools = _curate(FORMATS["circo"]("circo", root=str(tmp_path / "CIRCO")))
    assert sorted(queries) == ["circo:val:0"]
    assert pools == {"circo_val": {f"circo:image:{i}" for i in (1, 2, 3, 5, 6)}}   # 5: in the gallery, no positive
    assert reasons == {"circo:val:1": "unknown_image", "circo:val:2": "empty_text"}
    assert _rows(curated, info) == 5 and _rows(curated, path) == 3
    with pytest.raises(SourceFormatError, match="image_info_unlabeled2017.json"):
        read_circo("circo", tmp_path / "CIRCO", image_root=tmp_path / "elsewhere", gallery=True)


@pytest.mark.parametrize("content, expected", [
    ("[{", "a CIRCO annotation file: a JSON list of queries"),
    ([{"id": 0, "reference_img_id": 1, "relative_caption": "x", "shared_concept": "y"}],   # the test split's shape
     ":1: expected 'target_img_id' of type int; found no such key"),
    ([{"id": 0, "reference_img_id": 1, "target_img_id": 2, "relative_caption": "x", "gt_img_ids": ["2"]}],
     ":1: expected 'gt_img_ids' to be a list of int"),
    ([{"id": 0, "reference_img_id": 1, "target_img_id": 2, "relative_caption": 3, "gt_img_ids": [2]}],
     ":1: expected 'relative_caption' of type str; found int"),
])
def test_a_circo_file_of_another_structure_names_the_file_and_the_record(tmp_path, content, expected):
    path = _write(tmp_path / "annotations" / "val.json", content)
    with pytest.raises(SourceFormatError, match=expected) as error:
        read_circo("circo", tmp_path)
    assert str(path) in str(error.value)


# --- CIRR ------------------------------------------------------------------------------------------------------
def _cirr(dataset_root):
    names = ["dev-0-0-img0", "dev-0-1-img0", "dev-1-0-img0", "dev-1-1-img0"]
    for name in names:
        _image(dataset_root / "dev" / f"{name}.png", "PNG")
    split = {name: f"./dev/{name}.png" for name in names} | {"dev-9-9-img0": "../../etc/passwd"}
    group = ["dev-0-0-img0", "dev-0-1-img0", "dev-1-0-img0"]
    pairs = [
        {"pairid": 1, "reference": "dev-0-0-img0", "target_hard": "dev-0-1-img0", "target_soft": {"dev-0-1-img0": 1.0},
         "caption": "Show two of them on grass.", "img_set": {"id": 10, "members": group}},
        {"pairid": 2, "reference": "dev-5-5-img0", "target_hard": "dev-0-1-img0", "target_soft": {},
         "caption": "An unknown reference.", "img_set": {"id": 11, "members": group}},
        {"pairid": 3, "reference": "dev-1-0-img0", "target_hard": "dev-1-1-img0", "target_soft": {},
         "caption": "The target is outside its set.", "img_set": {"id": 12, "members": group}},
        {"pairid": 4, "reference": "dev-0-0-img0", "target_hard": "dev-0-1-img0", "target_soft": {},
         "caption": "", "img_set": {"id": 13, "members": group}}]
    cirr = dataset_root / "cirr"
    return (_write(cirr / "image_splits" / "split.rc2.val.json", split),
            _write(cirr / "captions" / "cap.rc2.val.json", pairs))


def test_cirr_pairs_give_a_query_over_the_split_and_one_within_the_img_set(tmp_path):
    split_file, captions_file = _cirr(tmp_path / "cirr_dataset")
    curated, queries, reasons, pools = _curate(read_cirr("cirr", tmp_path / "cirr_dataset" / "cirr"))
    assert sorted(queries) == ["cirr:val:1", "cirr:val:3", "cirr_subset:val:1"]
    full, subset = queries["cirr:val:1"], queries["cirr_subset:val:1"]
    assert full["task_id"] == subset["task_id"] == COMPOSED
    assert full["text"] == "Show two of them on grass." and full["image_path"].endswith("dev/dev-0-0-img0.png")
    assert full["positive_ids"] == subset["positive_ids"] == ["cirr:image:dev-0-1-img0"]
    assert full["pool"] == "cirr_val" and full["candidate_ids"] == [] and full["dataset"] == "cirr"
    assert subset["dataset"] == "cirr_subset"
    assert subset["candidate_ids"] == ["cirr:image:dev-0-1-img0", "cirr:image:dev-1-0-img0"]   # minus the reference
    assert pools == {"cirr_val": {f"cirr:image:dev-{g}-img0" for g in ("0-0", "0-1", "1-0", "1-1")}}
    assert reasons == {"cirr:image:dev-9-9-img0": "path_outside_root", "cirr:val:2": "unknown_image",
                       "cirr_subset:val:2": "unknown_image", "cirr_subset:val:3": "positive_not_in_img_set",
                       "cirr:val:4": "empty_text", "cirr_subset:val:4": "empty_text"}
    assert _rows(curated, split_file) == 5 and _rows(curated, captions_file) == 2 * 4
    assert sorted(curated.tables["datasets"]["dataset"].to_pylist()) == ["cirr", "cirr_subset"]


@pytest.mark.parametrize("pairs, split, expected", [
    ("not json", {}, "cap.rc2.val.json: expected a CIRR caption file"),
    ([{"pairid": 1, "reference": "a", "target_hard": "b", "caption": "c"}], {}, ":1: expected 'img_set' of type dict"),
    ([{"pairid": 1, "reference": "a", "target_hard": "b", "caption": "c", "img_set": {"members": [1]}}], {},
     ":1: expected img_set's 'members' to be a list of str"),
    ([{"pairid": "1", "reference": "a", "target_hard": "b", "caption": "c", "img_set": {"members": []}}], {},
     ":1: expected 'pairid' of type int; found str"),
    ([], ["a"], "split.rc2.val.json: expected a JSON object mapping image names to paths; found list"),
    ([], {"a": "./dev/a.png", "b": None}, "split.rc2.val.json:2: expected the path of 'b' as a string"),
])
def test_a_cirr_file_of_another_structure_names_the_file_and_the_record(tmp_path, pairs, split, expected):
    _write(tmp_path / "captions" / "cap.rc2.val.json", pairs)
    _write(tmp_path / "image_splits" / "split.rc2.val.json", split)
    with pytest.raises(SourceFormatError, match=expected):
        read_cirr("cirr", tmp_path)


# --- FashionIQ -------------------------------------------------------------------------------------------------
def test_fashioniq_text_is_clip4cirs_join_of_the_two_captions():
    for first, second in [("is solid black with no sleeves", "is black with straps"),
                          ("Has a longer hem.", "is blue?"), (" is darker, ", "has buttons.")]:
        clip4cir = f"{first.strip('.?, ').capitalize()} and {second.strip('.?, ')}"
        assert fashioniq_text([first, second]) == (clip4cir, None)
    assert fashioniq_text(["is red", " . "])[1][0] == "empty_text"


def test_fashioniq_triplets_are_candidate_plus_captions_to_target_over_the_category_split(tmp_path):
    for name in ("B001", "B002", "B003"):
        _image(tmp_path / "images" / f"{name}.png", "PNG")
    split_file = _write(tmp_path / "image_splits" / "split.dress.val.json", ["B001", "B002", "B003"])
    captions_file = _write(tmp_path / "captions" / "cap.dress.val.json", [
        {"target": "B002", "candidate": "B001", "captions": ["is solid black with no sleeves.", "is black with straps"]},
        {"target": "B777", "candidate": "B001", "captions": ["is white", "is longer"]},
        {"target": "B003", "candidate": "B002", "captions": ["", "is red"]},
        {"target": "B003", "candidate": "../../B002", "captions": ["is red", "is short"]}])
    records = read_fashioniq("fashioniq", tmp_path, categories=["dress"], image_ext=".png")
    curated, queries, reasons, pools = _curate(records)
    (query,) = queries.values()
    assert query["query_id"] == "fashioniq_dress:val:1" and query["dataset"] == "fashioniq_dress"
    assert query["text"] == "Is solid black with no sleeves and is black with straps"
    assert json.loads(query["original_text"]) == ["is solid black with no sleeves.", "is black with straps"]
    assert query["image_path"].endswith("images/B001.png") and query["task_id"] == COMPOSED
    assert query["positive_ids"] == ["fashioniq_dress:image:B002"] and query["pool"] == "fashioniq_dress_val"
    assert pools == {"fashioniq_dress_val": {f"fashioniq_dress:image:B00{i}" for i in (1, 2, 3)}}
    assert reasons == {"fashioniq_dress:val:2": "unknown_image", "fashioniq_dress:val:3": "empty_text",
                       "fashioniq_dress:val:4": "path_outside_root"}
    assert _rows(curated, split_file) == 3 and _rows(curated, captions_file) == 4


@pytest.mark.parametrize("captions, split, expected", [
    ("{", [], "cap.dress.val.json: expected a FashionIQ caption file"),
    ([{"candidate": "B1", "captions": ["a", "b"]}], [], ":1: expected 'target' of type str; found no such key"),
    ([{"target": "B2", "candidate": "B1", "captions": "a and b"}], [], ":1: expected 'captions' of type list"),
    ([{"target": "B2", "candidate": "B1", "captions": ["a", None]}], [], ":1: expected 'captions' to be a list of str"),
    ([], ["B1", 2], "split.dress.val.json:2: expected an image name"),
])
def test_a_fashioniq_file_of_another_structure_names_the_file_and_the_record(tmp_path, captions, split, expected):
    _write(tmp_path / "captions" / "cap.dress.val.json", captions)
    _write(tmp_path / "image_splits" / "split.dress.val.json", split)
    with pytest.raises(SourceFormatError, match=expected):
        read_fashioniq("fashioniq", tmp_path, categories=["dress"])


def test_fashioniq_reads_all_three_categories_by_default(tmp_path):
    with pytest.raises(SourceFormatError, match="split.dress.val.json"):
        FORMATS["fashioniq"]("fashioniq", root=str(tmp_path))
    for category in ("dress", "shirt", "toptee"):
        _write(tmp_path / "image_splits" / f"split.{category}.val.json", [])
        _write(tmp_path / "captions" / f"cap.{category}.val.json", [])
    records = read_fashioniq("fashioniq", tmp_path)
    assert records.datasets.columns["dataset"] == ["fashioniq_dress", "fashioniq_shirt", "fashioniq_toptee"]
