"""The papers' tables: published numbers stand beside ours exactly where the run measures the same datasets
(expected values read from the CSVs with the csv module, not through the reader)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

from uniembed.evaluate.paper_tables import paper_tables
from uniembed.evaluate.published import read_published

ROOT = Path(__file__).resolve().parents[2] / "data" / "published"


def printed(file: str, row: str, setting: str, dataset: str = "", metric: str = "Average") -> str:
    with open(ROOT / file, newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            if r["row"] == row and r["setting"] == setting and r["dataset"] == dataset and r["metric"] == metric:
                return f"{float(r['value']):.1f}"
    raise KeyError((file, row, setting, dataset, metric))


def mbeir_rows(tag, setting, cells):
    return [{"tag": tag, "benchmark": "mbeir", "setting": setting, "dataset": d, "task_id": t, "meta_task": None,
             "metric": m, "value": v, "n_queries": 10} for t, d, m, v in cells]


def mbeir_cells():
    """Every (task, dataset, metric) of U-MARVEL Table 7, spelled as M-BEIR's instruction file spells some (INFOSEEK)."""
    with open(ROOT / "umarvel_table7.csv", newline="", encoding="utf-8") as f:
        keys = {(int(r["task_id"]), r["dataset"], r["metric"]) for r in csv.DictReader(f) if r["task_id"]}
    return [(t, d.upper() if d == "InfoSeek" else d, m, 50.0) for t, d, m in sorted(keys)]


def mmeb_rows(tag, per_column):
    """MMEB score rows: per_column datasets per meta-task (None: MMEB's 10/10/12/4), the first 20 IND, the rest OOD."""
    rows = []
    for meta, n in (("Classification", 10), ("VQA", 10), ("Retrieval", 12), ("Grounding", 4)):
        for i in range(per_column[meta] if isinstance(per_column, dict) else n):
            rows.append({"tag": tag, "benchmark": "mmeb", "setting": "IND" if len(rows) < 20 else "OOD",
                         "dataset": f"{meta}{i}",
                         "task_id": None, "meta_task": meta, "metric": "P@1", "value": 40.0, "n_queries": 10})
    return rows


@pytest.fixture(scope="module")
def published():
    return read_published()


def test_real_mbeir_datasets_get_the_papers_columns_and_averages(published):
    rows = []
    for tag in ("hn", "hn+pointwise", "pre", "distill"):
        for setting in ("local", "global"):
            rows += mbeir_rows(tag, setting, mbeir_cells())
    text = paper_tables(rows, published, recall="hn", reranked={"hn+pointwise": "pointwise"},
                        stages=["pre", "hn", "distill"])
    assert "| Task | Dataset | Metric | hn | hn+pointwise | U-MARVEL (paper) | U-MARVEL⁺ (paper) |" in text
    mscoco = printed("umarvel_table7.csv", "U-MARVEL⁺", "local", "MSCOCO", "Recall@5")
    assert f"| qt→ci | MSCOCO | Recall@5 | 50.0 | 50.0 | {printed('umarvel_table7.csv', 'U-MARVEL', 'local', 'MSCOCO', 'Recall@5')} | {mscoco} |" in text
    assert f"| Average |  |  | 50.0 | 50.0 | {printed('umarvel_table7.csv', 'U-MARVEL', 'local')} | " \
           f"{printed('umarvel_table7.csv', 'U-MARVEL⁺', 'local')} |" in text
    assert f"{printed('umarvel_table14.csv', 'U-MARVEL⁺', 'global')} |" in text
    stage = f"| Hard-neg mining | hn | 50.0 | {printed('umarvel_table13.csv', 'Hard-neg mining', 'local')} | 50.0 | " \
            f"{printed('umarvel_table13.csv', 'Hard-neg mining', 'global')} |"
    assert stage in text
    assert "No published number" not in text.split("UniME-V2 Table 1")[0]


def test_a_partial_run_shows_the_papers_cells_but_not_their_averages(published):
    rows = mbeir_rows("hn", "local", mbeir_cells()[:3]) + mbeir_rows("hn", "global", mbeir_cells()[:3])
    text = paper_tables(rows, published, recall="hn", reranked={}, stages=[])
    local = text.split("Table 14")[0]
    assert "U-MARVEL (paper)" in local and "| Average |  |  | 50.0 | – | – |" in local


def test_synthetic_datasets_get_no_published_number_and_say_so(published):
    cells = [(0, "ShapeCaption", "Recall@5", 38.3), (4, "ShapeTwin", "Recall@5", 60.0)]
    rows = mbeir_rows("hn", "local", cells) + mbeir_rows("hn", "global", cells) + mmeb_rows("hn", dict.fromkeys(
        ("Classification", "VQA", "Retrieval", "Grounding"), 1)) + mmeb_rows("hn+p", dict.fromkeys(
        ("Classification", "VQA", "Retrieval", "Grounding"), 1))
    text = paper_tables(rows, published, recall="hn", reranked={"hn+p": "p"}, stages=[])
    assert "(paper)" not in text
    assert text.count("No published number of") == 4   # Tables 7, 14, UniME-V2 Tables 1 and 3
    assert "| Model | Classification (1) |" in text


def test_mmeb_with_the_36_datasets_gets_the_unime_v2_rows(published):
    rows = mmeb_rows("hn", None) + mmeb_rows("hn+p", None)
    text = paper_tables(rows, published, recall="hn", reranked={"hn+p": "p"}, stages=[])
    assert "| Model | Classification (10) | VQA (10) | Retrieval (12) | Grounding (4) | IND (20) | OOD (16) |" in text
    overall = printed("unime_v2_table1.csv", "UniME-V2(Qwen2-VL) 7B", "Overall", metric="P@1")
    assert f"| UniME-V2(Qwen2-VL) 7B (paper) |" in text and f"| {overall} |" in text
    assert f"| UniME-V2(7B) (paper) | UniME-V2(7B) | {printed('unime_v2_table3.csv', 'UniME-V2(7B) | UniME-V2(7B) | 0.6M', 'Overall', metric='P@1')} |" in text


def zeroshot_rows(tag, cells):
    return [{"tag": tag, "benchmark": "zeroshot", "setting": "zero-shot", "dataset": d, "task_id": t, "meta_task": None,
             "metric": m, "value": v, "n_queries": 10} for d, t, m, v in cells]


def _table2(text: str) -> list[list[str]]:
    block = text.split("UniME-V2 Table 2 layout")[1].split("U-MARVEL Table 8 layout")[0]
    return [[c.strip() for c in line.strip("| ").split(" | ")] for line in block.splitlines() if line.startswith("|")]


def test_table2_sets_the_papers_cells_only_where_the_run_has_the_dataset_and_every_sugarcrepe_file():
    replace = [(f"sugarcrepe_{f}", 3, "accuracy", v) for f, v in (("replace_obj", 60.0), ("replace_att", 70.0),
                                                                    ("replace_rel", 80.0))]
    rows = zeroshot_rows("m", [("flickr30k", 3, "Recall@1", 50.0), ("flickr30k", 0, "Recall@1", 40.0),
                               ("flickr30k", 0, "Recall@5", 90.0), *replace, ("sugarcrepe_swap_att", 3, "accuracy", 55.0)])
    text = paper_tables(rows, read_published(), recall=None, reranked={}, stages=[])
    header, _, ours, *papers = _table2(text)
    assert header == ["Model", "flickr30k qi→ct R@1", "flickr30k qt→ci R@1", "SugarCrepe Replace", "SugarCrepe Swap"]
    assert ours == ["m", "50.0", "40.0", "70.0", "55.0"]   # Replace: the mean of its three files
    file = "unime_v2_table2.csv"
    row = "UniME-V2 (Qwen2-VL) 2B"
    expected = [printed(file, row, "qi->ct", "Flickr30K", "Recall@1"), printed(file, row, "qt->ci", "Flickr30K",
                                                                               "Recall@1")]
    with open(ROOT / file, newline="", encoding="utf-8") as f:
        replace_printed = next(f"{float(r['value']):.1f}" for r in csv.DictReader(f)
                               if r["row"] == row and r["task"] == "Replace")
    (paper,) = [p for p in papers if p[0] == f"{row} (paper)"]
    assert paper == [f"{row} (paper)", *expected, replace_printed, "–"]   # Swap: only swap_att of its two files
    assert len(papers) == 3 and "only in the columns the run has" in text


def test_table2_on_the_synthetic_split_sets_no_published_number():
    rows = zeroshot_rows("zero_shot", [("shapes2", 3, "Recall@1", 20.0), ("shapes2", 0, "Recall@1", 10.0),
                                       ("sugarcrepe_swap_att", 3, "accuracy", 50.0)])
    text = paper_tables(rows, read_published(), recall=None, reranked={}, stages=[])
    assert _table2(text)[2:] == [["zero_shot", "20.0", "10.0", "50.0"]]
    assert "No published number of UniME-V2 Table 2" in text


def test_table8_sets_u_marvels_cells_beside_the_rows_the_run_has():
    files = ("replace_obj", "replace_att", "replace_rel", "swap_obj", "swap_att", "add_obj", "add_att")
    rows = zeroshot_rows("m", [("sharegpt4v", 0, "Recall@1", 80.0), ("shapes2", 3, "Recall@1", 30.0),
                               ("circo", 7, "mAP@5", 20.0), ("circo", 7, "mAP@10", 25.0),
                               *[(f"sugarcrepe_{f}", 3, "accuracy", 60.0 + i) for i, f in enumerate(files)]])
    text = paper_tables(rows, read_published(), recall=None, reranked={}, stages=[])
    block = text.split("U-MARVEL Table 8 layout")[1]
    lines = [[c.strip() for c in line.strip("| ").split(" | ")] for line in block.splitlines() if line.startswith("|")]
    file = "umarvel_table8.csv"
    assert lines[0] == ["Task", "Dataset", "Metric", "m", "U-MARVEL (paper)", "U-MARVEL⁺ (paper)"]
    assert lines[2] == ["qt→ci", "sharegpt4v", "Recall@1", "80.0", printed(file, "U-MARVEL", "qt->ci", "ShareGPT4V",
                                                                             "Recall@1"),
                        printed(file, "U-MARVEL⁺", "qt->ci", "ShareGPT4V", "Recall@1")]
    assert lines[3] == ["qi→ct", "shapes2", "Recall@1", "30.0", "–", "–"]
    assert lines[4][:4] == ["(qi,qt)→ci", "circo", "mAP@5", "20.0"] and lines[4][4] == printed(
        file, "U-MARVEL", "(qi,qt)->ci", "CIRCO", "mAP@5")
    assert lines[5][:4] == ["ITM", "SugarCrepe (all files)", "accuracy", "63.0"]   # the mean of the seven files
    assert lines[5][4] == printed(file, "U-MARVEL", "ITM", "SugarCrepe", "accuracy")
    partial = paper_tables(zeroshot_rows("m", [("shapes2", 3, "Recall@1", 30.0), ("sugarcrepe_swap_att", 3,
                                                                                "accuracy", 50.0)]),
                           read_published(), recall=None, reranked={}, stages=[])
    assert "No published number of U-MARVEL Table 8" in partial
