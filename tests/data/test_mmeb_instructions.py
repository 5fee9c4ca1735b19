"""MMEB: instruction split from the content (all 36 datasets), modality/task from the content, real image layout."""
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from uniembed.config import compose_config
from uniembed.data.curate import finalize
from uniembed.data.readers import read_mmeb
from uniembed.data.readers.mmeb_prompts import split_instruction
from uniembed.data.schemas import TASKS

from .mbeir_fixture import png
from .mmeb_shapes import EVAL, IMG, TRAIN

ROOT = Path(__file__).resolve().parents[2]


def test_the_table_covers_36_datasets_in_four_meta_tasks():
    meta = [v[0] for v in EVAL.values()]
    assert len(EVAL) == 36
    assert {m: meta.count(m) for m in set(meta)} == {"Classification": 10, "VQA": 10, "Retrieval": 12, "Grounding": 4}


@pytest.mark.parametrize("dataset", sorted(EVAL))
def test_split_instruction_on_each_eval_dataset(dataset):
    _, qry, _, targets, _, q_expected, t_expected, _ = EVAL[dataset]
    assert tuple(split_instruction(qry))[:2] == q_expected
    assert tuple(split_instruction(targets[0]))[:2] == t_expected
    assert split_instruction(qry).rule == "known"


def test_split_rule_colon_fallback_and_no_instruction():
    assert tuple(split_instruction("Find me an image that matches the given caption: a red star\n")) == (
        "Find me an image that matches the given caption:", "a red star", "colon")
    # a stem that takes no content does not swallow following words
    assert tuple(split_instruction("Represent the given image for retrieval: a cat")) == (
        "Represent the given image for retrieval:", "a cat", "colon")
    assert tuple(split_instruction("Represent the given images")) == (None, "Represent the given images", "none")
    assert tuple(split_instruction("tench, Tinca tinca")) == (None, "tench, Tinca tinca", "none")
    assert tuple(split_instruction(f"{IMG}\n")) == (None, None, "none")


def _eval_tree(root: Path) -> Path:
    (root / "eval").mkdir(parents=True)
    (root / "train").mkdir()
    for name, (_, qry, q_img, targets, t_img, *_rest) in EVAL.items():
        qpath = f"{name}/q.png" if q_img else ""
        tpaths = [f"{name}/t{j}.png" if t_img else "" for j in range(len(targets))]
        for p in [qpath, *tpaths]:
            if p:
                png(root / "images" / p)
        row = {"qry_text": qry, "qry_img_path": qpath, "tgt_text": targets, "tgt_img_path": tpaths}
        pq.write_table(pa.Table.from_pylist([row]), root / "eval" / f"{name}.parquet")
    for name, (qry, q_img, pos, p_img, *_rest) in TRAIN.items():
        row = {"qry": qry, "qry_image_path": f"train/{name}/q.png" if q_img else "", "pos_text": pos,
               "pos_image_path": f"train/{name}/p.png" if p_img else "", "neg_text": "", "neg_image_path": ""}
        for p in (row["qry_image_path"], row["pos_image_path"]):
            if p:
                png(root / "images" / p)
        pq.write_table(pa.Table.from_pylist([row]), root / "train" / f"{name}.parquet")
    return root


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    return finalize(read_mmeb("mmeb", _eval_tree(tmp_path_factory.mktemp("mmeb"))), progress=False)


def test_every_eval_row_is_kept_with_instruction_split_and_task_from_content(curated):
    assert curated.summary["quarantined"] == 0 and curated.summary["kept"] == len(EVAL) + len(TRAIN)
    queries = {r["dataset"]: r for r in curated.tables["queries"].to_pylist() if r["split"] == "eval"}
    cands = {r["candidate_id"]: r for r in curated.tables["candidates"].to_pylist()}
    for name, (_, qry, q_img, targets, t_img, (q_instr, q_text), (t_instr, t_text), task) in EVAL.items():
        q = queries[name]
        assert (q["instruction"], q["text"], q["original_text"]) == (q_instr, q_text, qry), name
        assert q["instruction_options"] == [q_instr], name
        assert q["task_id"] == task, name
        assert q["modality"] == TASKS[task][0], name
        pos = cands[q["positive_ids"][0]]
        assert (pos["text"], pos["original_text"]) == (t_text, targets[0]), name
        assert pos["modality"] == TASKS[task][1], name
    assert set(curated.summary["notes"]["mmeb_query_instruction_rule"]["ImageNet-1K"]) == {"known"}


def test_image_targets_that_are_only_an_instruction_are_images(curated):
    """The review's case: a t->i query (MSCOCO_t2i) is task 0 and its targets are plain images."""
    q = next(r for r in curated.tables["queries"].to_pylist() if r["dataset"] == "MSCOCO_t2i")
    cands = {r["candidate_id"]: r for r in curated.tables["candidates"].to_pylist()}
    assert q["task_id"] == 0 and q["text"] == "A man with a red helmet on a small moped on a dirt road."
    for cid in q["candidate_ids"]:
        assert cands[cid]["modality"] == "image" and cands[cid]["text"] is None
        assert cands[cid]["original_text"] == f"{IMG}\nRepresent the given image.\n"


def test_train_rows_split_like_eval_rows(curated):
    queries = {r["dataset"]: r for r in curated.tables["queries"].to_pylist() if r["split"] == "train"}
    cands = {r["candidate_id"]: r for r in curated.tables["candidates"].to_pylist()}
    for name, (qry, _, pos_text, _, (q_instr, q_text), (p_instr, p_text), task) in TRAIN.items():
        q = queries[name]
        assert (q["instruction"], q["text"], q["task_id"], q["original_text"]) == (q_instr, q_text, task, qry), name
        assert cands[q["positive_ids"][0]]["text"] == p_text, name


def test_unrecognised_instruction_stays_in_text_and_is_counted(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "eval").mkdir()
    pq.write_table(pa.Table.from_pylist([{"qry": "How old is the universe?", "qry_image_path": "", "pos_text": "13.8 Gyr",
                                          "pos_image_path": "", "neg_text": "", "neg_image_path": ""}]),
                   tmp_path / "train" / "Q.parquet")
    pq.write_table(pa.Table.from_pylist([{"qry_text": "Find me an image that matches the given caption: a red star",
                                          "qry_img_path": "", "tgt_text": [f"{IMG}\nRepresent the given image.\n"],
                                          "tgt_img_path": ["s.png"]}]), tmp_path / "eval" / "S.parquet")
    png(tmp_path / "images" / "s.png")
    out = finalize(read_mmeb("mmeb", tmp_path), progress=False)
    q = {r["dataset"]: r for r in out.tables["queries"].to_pylist()}
    assert q["Q"]["instruction"] is None and q["Q"]["instruction_options"] == [] and q["Q"]["text"] == "How old is the universe?"
    assert q["S"]["instruction"] == "Find me an image that matches the given caption:" and q["S"]["task_id"] == 0
    assert out.summary["notes"]["mmeb_query_instruction_rule"] == {"Q": {"none": 1}, "S": {"colon": 1}}


def _vlm2vec_layout(data_root: Path) -> None:
    """MMEB rows under MMEB/{train,eval}; images where VLM2Vec's README puts them (its --image_dir per split).

    MMEB-train rows name "images/<Dataset>/Train/x.jpg", relative to the MMEB-train folder once its
    images_zip archives are unpacked; MMEB-eval rows are relative to the folder images.zip is unzipped into.
    """
    mmeb = data_root / "MMEB"
    (mmeb / "train").mkdir(parents=True)
    (mmeb / "eval").mkdir()
    train = [{"qry": f"{IMG}\nRepresent the given image for classification\n",
              "qry_image_path": "images/ImageNet_1K/Train/n01440764_10026.JPEG", "pos_text": "tench",
              "pos_image_path": "", "neg_text": "", "neg_image_path": ""},
             {"qry": f"{IMG}\nFind a day-to-day image that looks similar to the provided image.\n",
              "qry_image_path": "images/NIGHTS/Train/ref_000_002.jpg", "pos_text": f"{IMG}\nRepresent the given image.\n",
              "pos_image_path": "images/NIGHTS/Train/distort_000_002_0.jpg", "neg_text": "", "neg_image_path": ""}]
    pq.write_table(pa.Table.from_pylist(train), mmeb / "train" / "ImageNet_1K.parquet")
    evals = [{"qry_text": "Find me an everyday image that matches the given caption: A dog.\n", "qry_img_path": "",
              "tgt_text": [f"{IMG}\nRepresent the given image.\n"] * 2,
              "tgt_img_path": ["MSCOCO_t2i/Test/0.jpg", "MSCOCO_t2i/Test/1.jpg"]}]
    pq.write_table(pa.Table.from_pylist(evals), mmeb / "eval" / "MSCOCO_t2i.parquet")
    for rel in ["images/ImageNet_1K/Train/n01440764_10026.JPEG", "images/NIGHTS/Train/ref_000_002.jpg",
                "images/NIGHTS/Train/distort_000_002_0.jpg"]:
        png(mmeb / "MMEB-train" / rel)
    for rel in ["MSCOCO_t2i/Test/0.jpg", "MSCOCO_t2i/Test/1.jpg"]:
        png(mmeb / "eval_images" / rel)


def test_real_config_default_resolves_vlm2vec_layout_without_missing_images(tmp_path):
    _vlm2vec_layout(tmp_path)
    cfg = compose_config(["data=real", f"data.root={tmp_path}"], ROOT / "config")
    spec = OmegaConf.to_container(cfg.data.sources.mmeb)
    assert spec.pop("format") == "mmeb" and spec.pop("declared")["queries"]["train"] == 662_000   # the plan's
    out = finalize(read_mmeb("mmeb", **spec), progress=False)
    assert out.summary["reasons"] == {} and out.summary["kept"] == out.summary["rows_in"] == 3
    paths = [p for p in out.tables["queries"].column("image_path").to_pylist() if p]
    assert all("images/images" not in p and Path(p).is_file() for p in paths)


def test_the_curate_stage_reads_the_real_config_with_its_declared_sizes(tmp_path):
    """The data section's `declared` sizes are the cost plan's: the curate stage does not pass them to the reader."""
    from uniembed.stages.curate import curate_source

    _vlm2vec_layout(tmp_path)
    cfg = compose_config(["data=real", f"data.root={tmp_path}"], ROOT / "config")
    summary = curate_source(cfg, "mmeb", tmp_path / "curated" / "mmeb", progress=False)
    assert summary["kept"] == summary["rows_in"] == 3


def test_image_root_per_split_must_name_every_split(tmp_path):
    with pytest.raises(ValueError, match=r"names no folder for split\(s\) \['eval'\]"):
        read_mmeb("mmeb", tmp_path, image_root={"train": str(tmp_path)})
