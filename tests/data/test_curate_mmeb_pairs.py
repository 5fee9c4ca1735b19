"""MMEB rows (placeholder convention, per-query candidates), SimCSE NLI CSV, caption TSV/Parquet."""
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uniembed.data.curate import finalize
from uniembed.data.errors import SourceFormatError
from uniembed.data.readers import read_captions, read_mmeb, read_nli

from .mbeir_fixture import png

IMG = "<|image_1|>"


def mmeb_tree(root, train_rows, eval_rows, datasets_tsv=True):
    for i in range(3):
        png(root / "images" / "Toy" / f"{i}.png", (80 * i, 10, 10))
    (root / "train").mkdir(parents=True)
    (root / "eval").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(train_rows), root / "train" / "ToyTrain.parquet")
    pq.write_table(pa.Table.from_pylist(eval_rows), root / "eval" / "ToyEval.parquet")
    if datasets_tsv:
        (root / "eval" / "datasets.tsv").write_text("dataset\tmeta_task\tsplit\nToyEval\tClassification\tIND\n")
    return root


def train_row(qry, qimg, pos, pimg="", neg="", nimg=""):
    return {"qry": qry, "qry_image_path": qimg, "pos_text": pos, "pos_image_path": pimg,
            "neg_text": neg, "neg_image_path": nimg}


def eval_row(qry, qimg, texts, imgs):
    return {"qry_text": qry, "qry_img_path": qimg, "tgt_text": texts, "tgt_img_path": imgs}


def test_mmeb_rows_become_canonical_queries_with_own_candidates(tmp_path):
    root = mmeb_tree(tmp_path, [train_row(f"{IMG}\nRepresent the image", "Toy/0.png", "red", neg="blue")],
                     [eval_row(f"{IMG} What colour?", "Toy/1.png", ["green", "red", "blue"], ["", "", ""]),
                      eval_row("Find the image of red", "", [f"{IMG}", f"{IMG}"], ["Toy/0.png", "Toy/1.png"])])
    out = finalize(read_mmeb("mmeb", root), progress=False)
    q = {r["query_id"]: r for r in out.tables["queries"].to_pylist()}
    train = q["ToyTrain:train:1"]
    assert train["text"] == "Represent the image" and train["modality"] == "image,text" and train["task_id"] == 6
    assert train["image_path"].endswith("images/Toy/0.png") and len(train["negative_ids"]) == 1
    ev = q["ToyEval:eval:1"]
    assert len(ev["candidate_ids"]) == 3 and ev["positive_ids"] == ev["candidate_ids"][:1]
    cands = {r["candidate_id"]: r for r in out.tables["candidates"].to_pylist()}
    assert cands[ev["positive_ids"][0]]["text"] == "green"
    t2i = q["ToyEval:eval:2"]
    assert t2i["task_id"] == 0 and cands[t2i["positive_ids"][0]]["modality"] == "image"
    meta = {r["dataset"]: r for r in out.tables["datasets"].to_pylist()}
    assert meta["ToyEval"]["meta_task"] == "Classification" and meta["ToyEval"]["eval_group"] == "IND"
    assert out.summary["rows_in"] == 3 == out.summary["kept"]


def test_a_train_query_mines_from_every_target_of_its_datasets_train_rows(tmp_path):
    """UniME-V2 §3.2 mines each training query's top 50 among all candidates: the pool ``<Dataset>:train`` is every
    positive and given negative of that dataset's train rows (a target repeated across rows is one member); eval
    targets stay per-query lists in no pool."""
    rows = [train_row("What colour is it?", "", "red", neg="blue"), train_row("Which colour?", "", "green"),
            train_row("A colour", "", "red", neg="yellow")]
    root = mmeb_tree(tmp_path, rows, [eval_row("Name it", "", ["green", "red"], ["", ""])])
    out = finalize(read_mmeb("mmeb", root), progress=False)
    cands = {r["candidate_id"]: r["text"] for r in out.tables["candidates"].to_pylist()}
    pools = {}
    for row in out.tables["pools"].to_pylist():
        pools.setdefault(row["pool"], set()).add(cands[row["candidate_id"]])
    assert pools == {"ToyTrain:train": {"red", "blue", "green", "yellow"}}
    queries = out.tables["queries"].to_pylist()
    assert {q["pool"] for q in queries if q["split"] == "train"} == {"ToyTrain:train"}
    assert [q["pool"] for q in queries if q["split"] == "eval"] == [None]


def test_mmeb_placeholder_mismatch_missing_image_and_duplicate_targets(tmp_path):
    root = mmeb_tree(tmp_path, [train_row("no placeholder", "Toy/0.png", "red"),
                                train_row(f"{IMG} x", "Toy/9.png", "red")],
                     [eval_row("q", "", ["a", "a"], ["", ""])])
    out = finalize(read_mmeb("mmeb", root), progress=False)
    r = {x["record_id"]: x["reason"] for x in out.tables["quarantine"].to_pylist()}
    assert r == {"ToyTrain:train:1": "image_placeholder_mismatch", "ToyTrain:train:2": "missing_image",
                 "ToyEval:eval:1": "duplicate_targets"}
    assert out.tables["queries"].num_rows == 0


def test_mmeb_structural_errors(tmp_path):
    root = mmeb_tree(tmp_path, [{"qry": "x", "qry_image_path": ""}], [eval_row("q", "", ["a"], [""])])
    with pytest.raises(SourceFormatError, match="ToyTrain.parquet: expected column 'pos_text'"):
        read_mmeb("mmeb", root)
    (root / "train" / "ToyTrain.parquet").unlink()
    pq.write_table(pa.Table.from_pylist([train_row("x", "", "y")]), root / "train" / "ToyTrain.parquet")
    pq.write_table(pa.Table.from_pylist([eval_row("q", "", ["a", "b"], [""])]), root / "eval" / "ToyEval.parquet")
    with pytest.raises(SourceFormatError, match="ToyEval.parquet:1: expected non-empty tgt_text and tgt_img_path of equal length"):
        read_mmeb("mmeb", root)


def test_nli_csv_triplets_and_bad_rows(tmp_path):
    path = tmp_path / "nli_for_simcse.csv"
    path.write_text('sent0,sent1,hard_neg\n"a red circle","a circle that is red","a blue square"\n'
                    '"x, with comma",,"z"\n"same","same pos","neg"\n')
    out = finalize(read_nli("nli", path), progress=False)
    q = out.tables["queries"].to_pylist()
    assert [r["text"] for r in q] == ["a red circle", "same"]
    cands = {r["candidate_id"]: r["text"] for r in out.tables["candidates"].to_pylist()}
    assert cands[q[0]["positive_ids"][0]] == "a circle that is red" and cands[q[0]["negative_ids"][0]] == "a blue square"
    assert out.tables["quarantine"].to_pylist()[0]["reason"] == "empty_text"
    assert out.summary["rows_in"] == 3
    path.write_text("sentence,other\na,b\n")
    with pytest.raises(SourceFormatError, match=r"nli_for_simcse.csv:1: expected a header with columns \['sent0', 'sent1'\]"):
        read_nli("nli", path)


@pytest.mark.parametrize("fmt", ["tsv", "parquet"])
def test_caption_pairs(tmp_path, fmt):
    png(tmp_path / "images" / "a.png")
    rows = [{"image": "images/a.png", "caption": "a red square"}, {"image": "images/missing.png", "caption": "x"},
            {"image": "images/a.png", "caption": ""}]
    if fmt == "tsv":
        path = tmp_path / "captions.tsv"
        path.write_text("image\tcaption\n" + "".join(f"{r['image']}\t{r['caption']}\n" for r in rows))
    else:
        path = tmp_path / "captions.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    out = finalize(read_captions("captions", path), progress=False)
    q = out.tables["queries"].to_pylist()
    assert len(q) == 1 and q[0]["modality"] == "image" and q[0]["task_id"] == 3
    assert sorted(r["reason"] for r in out.tables["quarantine"].to_pylist()) == ["empty_text", "missing_image"]


def test_caption_tsv_with_wrong_field_count_stops(tmp_path):
    path = tmp_path / "captions.tsv"
    path.write_text("image\tcaption\na.png\n")
    with pytest.raises(SourceFormatError, match="captions.tsv:2: expected 2 fields per row"):
        read_captions("captions", path)
