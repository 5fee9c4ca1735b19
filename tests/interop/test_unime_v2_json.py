"""Reading UniME-V2's released judged JSON (quarantine of every malformed kind), exporting the filter's
table in that format, the round trip, and the CLI."""
import copy
import json
import math

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from uniembed.artifacts import read_parquet
from uniembed.data.errors import SourceFormatError
from uniembed.data.schemas import CANDIDATES, QUARANTINE, QUERIES, TASK_OF_MODALITIES
from uniembed.interop import export_unime_v2_json, import_unime_v2_json
from uniembed.mine.schemas import HARD_NEGATIVES
from uniembed.stages import unime_v2_json as cli

from .files import IMG, good_records, png, record, write_json


@pytest.fixture
def released(tmp_path):
    root = tmp_path / "data"
    return root, good_records(root)


def rows(directory, name, schema):
    return read_parquet(directory / f"{name}.parquet", schema).to_pylist()


def test_released_layout_becomes_train_queries_with_the_judge_scores(tmp_path, released):
    root, records = released
    summary = import_unime_v2_json(write_json(tmp_path / "train.json", records), root, tmp_path / "out")
    curated = tmp_path / "out" / "unime_v2"
    queries = rows(curated, "queries", QUERIES)
    candidates = {c["candidate_id"]: c for c in rows(curated, "candidates", CANDIDATES)}
    hn = {r["query_id"]: r for r in read_parquet(tmp_path / "out" / "hard_negatives.parquet", HARD_NEGATIVES).to_pylist()}
    assert [q["query_id"] for q in queries] == [f"unime_v2:{i}" for i in range(6)] and summary["quarantined"] == 0
    assert {q["split"] for q in queries} == {"train"} and summary["queries_with_selections"] == 6
    vqa, visdial, cirr = queries[:3]
    assert vqa["instruction"] == "Represent the given image with the following question:"
    assert vqa["text"] == "What color is item 0?" and vqa["image_path"] == str(root / records[0]["query_image"])
    assert vqa["task_id"] == TASK_OF_MODALITIES[("image,text", "text")]
    assert visdial["task_id"] == TASK_OF_MODALITIES[("text", "image")] and visdial["image_path"] is None
    assert cirr["task_id"] == TASK_OF_MODALITIES[("image,text", "image")]
    for q, r in zip(queries, records):
        row = hn[q["query_id"]]
        assert row["positive_scores"] == [r["query_pos_scores"]] == [row["positive_score"]]
        assert row["negative_scores"] == r["hard_negatives_scores"] and row["negative_ids"] == q["negative_ids"]
        assert [candidates[c]["original_text"] for c in row["negative_ids"]] == [t for t, _ in r["hard_negatives"]]
        assert candidates[q["positive_ids"][0]]["original_text"] == r["pos_text"]
    assert candidates[visdial["positive_ids"][0]]["modality"] == "image"   # an instruction-only text: image target
    assert hn["unime_v2:0"]["strategy"] == "unime_v2" and hn["unime_v2:0"]["outcome"] == "selected"
    # deterministic ids: a second import elsewhere gives the same tables
    import_unime_v2_json(tmp_path / "train.json", root, tmp_path / "again")
    for name in ("queries", "candidates"):
        assert pq.read_table(tmp_path / "again" / "unime_v2" / f"{name}.parquet").equals(pq.read_table(curated / f"{name}.parquet"))
    assert pq.read_table(tmp_path / "again" / "hard_negatives.parquet").equals(pq.read_table(tmp_path / "out" / "hard_negatives.parquet"))


def malformed(root, good):
    """(record, reason, key) for every malformed kind; the key is the one the detail must name."""
    png(root, "../outside/x.png", (1, 2, 3))                  # exists, but outside the root
    (root / "images" / "broken.png").write_bytes(b"not a png")

    def edit(**changes):
        r = copy.deepcopy(good)
        r.update(changes)
        return r
    no_pos_image = copy.deepcopy(good)
    del no_pos_image["pos_image"]
    negs = good["hard_negatives"]
    return [
        (no_pos_image, "missing_key", "pos_image"),
        (edit(query_pos_scores=[0.5]), "wrong_type", "query_pos_scores"),
        (edit(query_pos_scores=True), "wrong_type", "query_pos_scores"),
        (edit(query_text=None), "wrong_type", "query_text"),
        (edit(hard_negatives=[negs[0], "just text", negs[2]]), "wrong_type", "hard_negatives[1]"),
        (edit(hard_negatives_scores={"0": 0.1}), "wrong_type", "hard_negatives_scores"),
        (["not", "an", "object"], "wrong_type", "(the record)"),
        (edit(hard_negatives_scores=[0.1, 0.2]), "score_count_mismatch", "hard_negatives_scores"),
        (edit(hard_negatives_scores=[0.1, math.nan, 0.2]), "invalid_score", "hard_negatives_scores[1]"),
        (edit(hard_negatives_scores=[0.1, math.inf, 0.2]), "invalid_score", "hard_negatives_scores[1]"),
        (edit(query_pos_scores=1.5), "invalid_score", "query_pos_scores"),
        (edit(hard_negatives_scores=[-0.1, 0.1, 0.2]), "invalid_score", "hard_negatives_scores[0]"),
        (edit(hard_negatives=[], hard_negatives_scores=[]), "no_hard_negatives", "hard_negatives"),
        (edit(pos_text=f"{IMG}\nRepresent the given image\n", pos_image="../outside/x.png"), "path_outside_root", "pos_image"),
        (edit(hard_negatives=[negs[0], [f"{IMG}\nx", str(root.parent / "outside" / "x.png")], negs[2]]),
         "path_outside_root", "hard_negatives[1][1]"),
        (edit(query_image="images/Train/nope.png"), "missing_image", "query_image"),
        (edit(hard_negatives=[negs[0], negs[1], [f"{IMG}\nx", "images/broken.png"]]), "corrupt_image", "hard_negatives[2][1]"),
        (edit(pos_text="", pos_image=""), "empty_text", "pos_text"),
        (edit(pos_text="   ", pos_image=None), "empty_text", "pos_text"),
        (edit(query_text="What is in the image?"), "image_placeholder_mismatch", "query_text"),
    ]


def test_every_malformed_record_is_quarantined_naming_its_index_and_key(tmp_path, released):
    root, records = released
    bad = malformed(root, records[0])
    data = records[:2] + [r for r, _, _ in bad] + records[2:]
    summary = import_unime_v2_json(write_json(tmp_path / "train.json", data), root, tmp_path / "out")
    quarantine = rows(tmp_path / "out" / "unime_v2", "quarantine", QUARANTINE)
    got = {q["source_line"]: q for q in quarantine}
    assert len(quarantine) == len(got) == len(bad) == summary["quarantined"]
    for index, (_, reason, key) in enumerate(bad, start=2):
        assert got[index]["reason"] == reason, got[index]
        assert got[index]["detail"].startswith(f"record {index}, key {key!r}:"), got[index]["detail"]
        assert got[index]["record_id"] == f"unime_v2:{index}" and got[index]["source_file"] == str(tmp_path / "train.json")
    kept = [q["query_id"] for q in rows(tmp_path / "out" / "unime_v2", "queries", QUERIES)]
    assert kept == [f"unime_v2:{i}" for i in (0, 1, *range(2 + len(bad), len(data)))]
    hn = read_parquet(tmp_path / "out" / "hard_negatives.parquet", HARD_NEGATIVES)
    assert hn["query_id"].to_pylist() == kept
    curated = json.loads((tmp_path / "out" / "unime_v2" / "summary.json").read_text())
    assert curated["rows_in"] == len(data) == curated["kept"] + curated["quarantined"]
    assert sum(summary["reasons"].values()) == len(bad)


@pytest.mark.parametrize("content, found", [('{"query_text": "x"}', "a JSON dict"), ("[]", "a JSON list of length 0"),
                                            ('[{"query_text": ', "invalid JSON"), ("3", "a JSON int")])
def test_a_file_that_is_not_a_json_list_fails_naming_the_file(tmp_path, content, found):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(SourceFormatError, match=f"{path}: expected a non-empty JSON list.*found {found}"):
        import_unime_v2_json(path, tmp_path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_too_many_quarantined_records_fail_and_write_nothing(tmp_path, released):
    root, records = released
    data = records[:3] + [record("", "", "x", "", 0.5, [("y", "")], [0.1])] * 2   # 2 of 5 empty queries
    path = write_json(tmp_path / "train.json", data)
    with pytest.raises(ValueError, match=r"train.json: 2 of 5 records quarantined, more than max_quarantined_fraction 0.3"):
        import_unime_v2_json(path, root, tmp_path / "out", max_quarantined_fraction=0.3)
    assert not (tmp_path / "out").exists()
    assert import_unime_v2_json(path, root, tmp_path / "out", max_quarantined_fraction=0.4)["quarantined"] == 2


def test_round_trip_keeps_texts_images_and_scores(tmp_path, released):
    root, records = released
    records[0]["pos_image"] = None                       # null image (read as "")
    records[5]["hard_negatives_scores"] = [1.0, 1.0, 1.0]   # the paper's random fallback
    records[1]["query_text"] = f"{IMG}\n{records[1]['query_text']}"   # a stray placeholder, no image (released WebQA)
    summary = import_unime_v2_json(write_json(tmp_path / "train.json", records), root, tmp_path / "out")
    assert summary["quarantined"] == 0 and summary["placeholder_without_image"] == 1
    visdial = read_parquet(tmp_path / "out" / "unime_v2" / "queries.parquet", QUERIES).to_pylist()[1]
    assert visdial["modality"] == "text" and IMG not in visdial["text"] and visdial["image_path"] is None
    hn = tmp_path / "out" / "hard_negatives.parquet"
    assert read_parquet(hn, HARD_NEGATIVES)["outcome"].to_pylist()[5] == "fallback_random"
    summary = export_unime_v2_json(hn, tmp_path / "out" / "unime_v2", root, tmp_path / "exported.json")
    exported = json.loads((tmp_path / "exported.json").read_text())
    records[0]["pos_image"] = ""
    assert exported == records and summary["records"] == 6 and summary["skipped"] == {}
    assert list(exported[0]) == list(records[0])          # the released key order
    import_unime_v2_json(tmp_path / "exported.json", root, tmp_path / "again")
    again = pq.read_table(tmp_path / "again" / "hard_negatives.parquet")
    assert again.drop_columns("params").equals(pq.read_table(hn).drop_columns("params"))   # params name the file


def filter_table(curated, path):
    """A filter table over one curated mbeir train query per task: 3 scored negatives from across the pool
    (all modalities), every positive scored, and rows the format cannot carry (no negatives; a failed
    positive score)."""
    by_task = {}
    for r in pq.read_table(curated / "queries.parquet").to_pylist():
        by_task.setdefault(r["task_id"], r) if r["split"] == "train" else None
    queries = [by_task[t] for t in sorted(by_task)]
    pool = pq.read_table(curated / "candidates.parquet")["candidate_id"].to_pylist()
    out = []
    for n, q in enumerate(queries):
        negatives = [c for c in pool if c not in q["positive_ids"]][n::len(pool) // 3][:3]
        pos = list(q["positive_ids"])
        row = {"query_id": q["query_id"], "negative_ids": negatives, "negative_scores": [0.5, 0.25, 0.125],
               "positive_score": 0.875, "positive_ids": pos, "positive_scores": [0.875] * len(pos),
               "strategy": "unime_v2", "params": "{}", "outcome": "selected", "false_negatives_removed": 0}
        if n == len(queries) - 2:
            row.update(negative_ids=[], negative_scores=[], outcome="no_candidates")
        if n == len(queries) - 1:
            row.update(positive_scores=[None] * len(pos))
        out.append(row)
    pq.write_table(pa.Table.from_pylist(out, HARD_NEGATIVES), path)
    return path, queries


def test_export_of_the_filter_output_reimports_with_its_scores(tmp_path, small_world):
    curated, root = small_world["curated"]["mbeir"], small_world["root"] / "mbeir"
    table, queries = filter_table(curated, tmp_path / "hn.parquet")
    summary = export_unime_v2_json(table, curated, root, tmp_path / "out.json")
    records = json.loads((tmp_path / "out.json").read_text())
    assert summary["skipped"] == {"no_negatives:no_candidates": 1, "positive_without_score": len(queries[-1]["positive_ids"])}
    exported = [q for q in queries[:-2] for _ in q["positive_ids"]]     # one record per scored positive
    assert len(records) == len(exported) == summary["records"] and len(exported) >= 5
    sides = [side for r in records for side in [(r["query_text"], r["query_image"]), (r["pos_text"], r["pos_image"]),
                                                 *map(tuple, r["hard_negatives"])]]
    assert {bool(image) for _, image in sides} == {True, False}
    for text, image in sides:
        assert (IMG in text) == bool(image) and not image.startswith(("/", "..")) and (text or image)
        assert not image or (root / image).is_file()
    for r, q in zip(records, exported):
        assert r["query_pos_scores"] == 0.875 and r["hard_negatives_scores"] == [0.5, 0.25, 0.125]
        assert r["query_image"] == ("" if not q["image_path"] else str(q["image_path"]).removeprefix(f"{root}/"))
        assert q["instruction"] and q["instruction"] in r["query_text"] and (q["text"] or "") in r["query_text"]
    back = import_unime_v2_json(tmp_path / "out.json", root, tmp_path / "back")
    assert back["quarantined"] == 0 and back["queries_in"] == len(records)
    assert read_parquet(tmp_path / "back" / "hard_negatives.parquet")["negative_scores"].to_pylist() == \
        [[0.5, 0.25, 0.125]] * len(records)


def test_export_refuses_cosine_scores_and_images_outside_the_root(tmp_path, released):
    root, records = released
    import_unime_v2_json(write_json(tmp_path / "train.json", records), root, tmp_path / "out")
    hn, curated = tmp_path / "out" / "hard_negatives.parquet", tmp_path / "out" / "unime_v2"
    with pytest.raises(ValueError, match=r"row 0 \(query unime_v2:0\): image .* is not under the image root"):
        export_unime_v2_json(hn, curated, tmp_path / "elsewhere", tmp_path / "x.json")
    cosine = read_parquet(hn, HARD_NEGATIVES).to_pylist()
    for r in cosine:
        r.update(strategy="umarvel", params='{"score_column": "similarity", "k": 3}')
    pq.write_table(pa.Table.from_pylist(cosine, HARD_NEGATIVES), tmp_path / "cosine.parquet")
    with pytest.raises(ValueError, match="strategy 'umarvel' stores cosine scores"):
        export_unime_v2_json(tmp_path / "cosine.parquet", curated, root, tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def test_cli_imports_and_exports(tmp_path, released):
    root, records = released
    path = write_json(tmp_path / "train.json", records)
    cli.main(["import", "--json", str(path), "--image-root", str(root), "--out-dir", str(tmp_path / "out"),
              "--source", "judged"])
    assert (tmp_path / "out" / "judged" / "queries.parquet").is_file()
    cli.main(["export", "--hard-negatives", str(tmp_path / "out" / "hard_negatives.parquet"), "--curated-dir",
              str(tmp_path / "out" / "judged"), "--image-root", str(root), "--out", str(tmp_path / "back.json")])
    assert json.loads((tmp_path / "back.json").read_text()) == records
    (tmp_path / "obj.json").write_text("{}")
    with pytest.raises(SystemExit, match=r"unime_v2_json import: .*obj.json: expected a non-empty JSON list"):
        cli.main(["import", "--json", str(tmp_path / "obj.json"), "--image-root", str(root), "--out-dir", str(tmp_path / "o")])
