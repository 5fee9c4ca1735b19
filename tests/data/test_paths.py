"""Data paths stay inside their root: M-BEIR, MMEB and caption paths that escape are path_outside_root."""
import os

import pyarrow as pa
import pyarrow.parquet as pq

from uniembed.data.curate import finalize
from uniembed.data.paths import RootedPaths
from uniembed.data.readers import read_captions, read_mbeir, read_mmeb, read_nli

from .mbeir_fixture import build, cand, good_pool, png, query

IMG = "<|image_1|>"


def _secret(tmp_path):
    return png(tmp_path / "outside" / "secret.png")


def test_rooted_paths_follow_dotdot_absolute_and_symlinks(tmp_path):
    root = tmp_path / "data"
    png(root / "a" / "in.png")
    secret = _secret(tmp_path)
    os.symlink(secret, root / "a" / "link.png")
    os.symlink(root, tmp_path / "alias")
    paths = RootedPaths(root)
    assert paths.resolve("a/in.png") == (str(root / "a" / "in.png"), None)
    assert paths.resolve(str(root / "a" / "in.png"))[1] is None          # absolute, but inside
    assert paths.resolve("a/../a/in.png")[1] is None
    for escaping in ["../outside/secret.png", "a/../../outside/secret.png", secret, "a/link.png", ".."]:
        joined, problem = paths.resolve(escaping)
        assert problem[0] == "path_outside_root" and "outside the root" in problem[1], escaping
    assert RootedPaths(tmp_path / "alias").resolve("a/in.png")[1] is None  # the root itself may be a symlink


def test_mbeir_paths_outside_the_root_are_quarantined_never_read(tmp_path):
    root = tmp_path / "mbeir"
    secret = _secret(tmp_path)
    png(root / "mbeir_images" / "toy" / "0.png")
    os.symlink(secret, root / "mbeir_images" / "toy" / "link.png")  # a link inside the root pointing out
    pool = good_pool() + [cand("9:20", img="../outside/secret.png"), cand("9:21", img=secret),
                          cand("9:22", img="mbeir_images/toy/link.png")]
    queries = [query("9:1", 0, txt="a", pos=["9:20"]), query("9:2", 0, txt="b", pos=["9:21"]),
               query("9:3", 0, txt="c", pos=["9:22"]), query("9:4", 4, img="../../outside/secret.png", pos=["9:0"]),
               query("9:5", 0, txt="d", pos=["9:0"])]
    out = finalize(read_mbeir("toy", build(root, queries, pool), splits=["test"]), progress=False)
    rows = out.tables["quarantine"].to_pylist()
    reason = {(r["table"], r["record_id"]): r for r in rows}
    for did in ("9:20", "9:21", "9:22"):
        assert reason[("candidates", did)]["reason"] == "path_outside_root"
    assert reason[("queries", "9:4")]["reason"] == "path_outside_root"
    for qid in ("9:1", "9:2", "9:3"):
        assert reason[("queries", qid)]["reason"] == "references_quarantined_candidate"
        assert "path_outside_root" in reason[("queries", qid)]["detail"]
    assert out.tables["queries"].column("query_id").to_pylist() == ["9:5"]
    kept = out.tables["candidates"].column("image_path").to_pylist()
    assert not any("secret" in (p or "") or "link" in (p or "") for p in kept)
    assert out.summary["rows_in"] == out.summary["kept"] + out.summary["quarantined"]


def test_mmeb_paths_outside_the_image_root_are_quarantined(tmp_path):
    root = tmp_path / "mmeb"
    _secret(tmp_path)
    (root / "train").mkdir(parents=True)
    (root / "eval").mkdir()
    png(root / "images" / "ok.png")
    train = [{"qry": f"{IMG}\nRepresent the given image for classification\n", "qry_image_path": "../../outside/secret.png",
              "pos_text": "tench", "pos_image_path": "", "neg_text": "", "neg_image_path": ""},
             {"qry": "Find me an everyday image that matches the given caption: x", "qry_image_path": "",
              "pos_text": f"{IMG}\nRepresent the given image.\n", "pos_image_path": str(tmp_path / "outside" / "secret.png"),
              "neg_text": "", "neg_image_path": ""},
             {"qry": f"{IMG}\nRepresent the given image for classification\n", "qry_image_path": "ok.png",
              "pos_text": "tench", "pos_image_path": "", "neg_text": "", "neg_image_path": ""}]
    pq.write_table(pa.Table.from_pylist(train), root / "train" / "T.parquet")
    pq.write_table(pa.Table.from_pylist([{"qry_text": "q", "qry_img_path": "", "tgt_text": ["a", f"{IMG}"],
                                          "tgt_img_path": ["", "../../outside/secret.png"]}]), root / "eval" / "E.parquet")
    out = finalize(read_mmeb("mmeb", root), progress=False)
    got = {r["record_id"]: (r["reason"], r["detail"]) for r in out.tables["quarantine"].to_pylist()}
    assert got["T:train:1"][0] == "path_outside_root"
    assert got["T:train:2"][0] == "path_outside_root" and got["T:train:2"][1].startswith("positive target 0:")
    assert got["E:eval:1"][0] == "path_outside_root" and got["E:eval:1"][1].startswith("candidate target 1:")
    assert out.tables["queries"].column("query_id").to_pylist() == ["T:train:3"]


def test_caption_paths_outside_the_image_root_are_quarantined(tmp_path):
    _secret(tmp_path)
    png(tmp_path / "cc3m" / "images" / "a.png")
    path = tmp_path / "cc3m" / "captions.tsv"
    path.write_text("image\tcaption\nimages/a.png\ta red square\n../outside/secret.png\ta secret\n")
    out = finalize(read_captions("captions", path), progress=False)
    assert [r["reason"] for r in out.tables["quarantine"].to_pylist()] == ["path_outside_root"]
    q = out.tables["queries"].to_pylist()
    assert len(q) == 1 and q[0]["instruction_options"] == [] and q[0]["original_text"] is None
    assert out.tables["candidates"].column("original_text").to_pylist() == ["a red square"]


def test_nli_queries_have_no_instruction_options_and_keep_original_text(tmp_path):
    path = tmp_path / "nli.csv"
    path.write_text('sent0,sent1,hard_neg\n"  a red circle ","a circle that is red","a blue square"\n')
    q = finalize(read_nli("nli", path), progress=False).tables["queries"].to_pylist()[0]
    assert q["instruction_options"] == [] and q["text"] == "a red circle" and q["original_text"] == "  a red circle "
