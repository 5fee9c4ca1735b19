"""M-BEIR reader + cross-record validation: every bad input of the curation contract."""
import json

import pytest

from uniembed.data.curate import finalize
from uniembed.data.errors import SourceFormatError
from uniembed.data.readers import read_mbeir
from uniembed.data.readers.mbeir import read_instructions

from .mbeir_fixture import build, cand, good_pool, query, write_jsonl


def curate(root, splits=("test",), workers=1):
    return finalize(read_mbeir("toy", root, splits=list(splits)), image_workers=workers, progress=False)


def reasons(curated):
    q = curated.tables["quarantine"].to_pylist()
    return {(r["record_id"], r["reason"]) for r in q}


def test_clean_source_keeps_everything_and_attaches_instructions(tmp_path):
    queries = [query("9:1", 0, txt="a red square", pos=["9:0"]), query("9:2", 0, txt="a green one", pos=["9:1"])]
    out = curate(build(tmp_path, queries, good_pool()))
    q = out.tables["queries"].to_pylist()
    assert [r["query_id"] for r in q] == ["9:1", "9:2"]
    assert q[0]["dataset"] == "Toy" and q[0]["pool"] == "toy_task0" and q[0]["split"] == "test"
    assert q[0]["instruction"] in {"Find the picture.", "Show me an image.", "Retrieve an image.", "Locate the image."}
    assert out.tables["candidates"].num_rows == 4
    pools = out.tables["pools"].to_pylist()
    assert {p["pool"] for p in pools} == {"toy_task0", "union_test"} and len(pools) == 8
    assert out.summary["quarantined"] == 0 and out.summary["rows_in"] == 2 + 8


def test_instruction_choice_is_seeded_and_stable(tmp_path):
    queries = [query(f"9:{i}", 0, txt=f"text {i}", pos=["9:0"]) for i in range(1, 40)]
    root = build(tmp_path, queries, good_pool())
    a = read_mbeir("toy", root, splits=["test"], instruction_seed=0).queries.columns["instruction"]
    b = read_mbeir("toy", root, splits=["test"], instruction_seed=0).queries.columns["instruction"]
    c = read_mbeir("toy", root, splits=["test"], instruction_seed=1).queries.columns["instruction"]
    assert a == b and a != c and len(set(a)) == 4


def test_missing_and_corrupt_images_are_quarantined_and_cascade(tmp_path):
    pool = good_pool() + [cand("9:7", img="mbeir_images/toy/missing.png"), cand("9:8", img="mbeir_images/toy/bad.png")]
    queries = [query("9:1", 0, txt="x", pos=["9:7"]), query("9:2", 0, txt="y", pos=["9:8"]), query("9:3", 0, txt="z", pos=["9:0"])]
    root = build(tmp_path, queries, pool)
    (root / "mbeir_images" / "toy" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    out = curate(root, workers=2)
    r = reasons(out)
    assert ("9:7", "missing_image") in r and ("9:8", "corrupt_image") in r
    assert ("9:1", "references_quarantined_candidate") in r and ("9:2", "references_quarantined_candidate") in r
    assert [q["query_id"] for q in out.tables["queries"].to_pylist()] == ["9:3"]
    assert "9:7" not in out.tables["candidates"].column("candidate_id").to_pylist()
    # each bad candidate line is quarantined once per pool file it appears in
    assert out.summary["reasons"]["missing_image"] == 2


def test_text_and_modality_rules(tmp_path):
    pool = good_pool() + [cand("9:10", txt="   ", modality="text"), cand("9:11", txt="words", modality="image")]
    queries = [
        query("9:1", 0, txt="", pos=["9:0"], modality="text"),                 # empty text
        query("9:2", 0, txt="hello", img="mbeir_images/toy/0.png", pos=["9:0"], modality="text"),  # contradiction
        query("9:3", 0, txt="fine", pos=["9:0"]),
    ]
    out = curate(build(tmp_path, queries, pool))
    r = reasons(out)
    assert {("9:1", "empty_text"), ("9:2", "modality_mismatch"), ("9:10", "empty_text"), ("9:11", "modality_mismatch")} <= r


def test_duplicate_ids_exact_and_conflicting(tmp_path):
    pool = good_pool() + [cand("9:0", img="mbeir_images/toy/0.png")]          # exact duplicate in the same pool
    queries = [query("9:1", 0, txt="a", pos=["9:0"]), query("9:1", 0, txt="a", pos=["9:0"]),   # exact
               query("9:2", 0, txt="b", pos=["9:1"]), query("9:2", 0, txt="c", pos=["9:1"])]   # conflicting
    out = curate(build(tmp_path, queries, pool))
    q = out.tables["quarantine"].to_pylist()
    exact = [x for x in q if x["reason"] == "exact_duplicate"]
    assert {x["record_id"] for x in exact} == {"9:0", "9:1"}
    assert "repeats" in exact[0]["detail"]
    assert sum(x["reason"] == "conflicting_duplicate_id" for x in q) == 2
    assert out.tables["queries"].column("query_id").to_pylist() == ["9:1"]
    assert "9:0" in out.tables["candidates"].column("candidate_id").to_pylist()


def test_positive_absent_from_pool_and_unknown_task(tmp_path):
    queries = [query("9:1", 0, txt="a", pos=["9:99"]), query("9:2", 42, txt="b", pos=["9:0"]),
               query("9:3", 0, txt="c", pos=["9:0"], neg=["9:98"]), query("9:4", 0, txt="d", pos=[])]
    out = curate(build(tmp_path, queries, good_pool()))
    r = reasons(out)
    assert {("9:1", "positive_not_in_pool"), ("9:2", "unknown_task_id"), ("9:3", "negative_not_in_pool"),
            ("9:4", "no_positive")} <= r
    detail = {x["record_id"]: x["detail"] for x in out.tables["quarantine"].to_pylist()}
    assert "9:99" in detail["9:1"] and "42" in detail["9:2"]


def test_truncated_line_stops_with_file_and_line(tmp_path):
    root = build(tmp_path, [query("9:1", 0, txt="a", pos=["9:0"])], good_pool())
    path = root / "query" / "test" / "mbeir_toy_task0_test.jsonl"
    write_jsonl(path, [query("9:1", 0, txt="a", pos=["9:0"])], raw_tail='{"qid": "9:2", "query_txt": "tru')
    with pytest.raises(SourceFormatError) as err:
        read_mbeir("toy", root, splits=["test"])
    assert f"{path}:2" in str(err.value) and "complete JSON object" in str(err.value)


@pytest.mark.parametrize("mutate, expected", [
    (lambda r: r.pop("pos_cand_list"), "required field 'pos_cand_list'"),
    (lambda r: r.update(task_id="0"), "'task_id' of type integer"),
    (lambda r: r.update(pos_cand_list="9:0"), "'pos_cand_list' of type list"),
    (lambda r: r.update(qid=None), "'qid' to be non-null"),
])
def test_structural_errors_name_file_line_and_expectation(tmp_path, mutate, expected):
    bad = query("9:2", 0, txt="b", pos=["9:0"])
    mutate(bad)
    root = build(tmp_path, [query("9:1", 0, txt="a", pos=["9:0"]), bad], good_pool())
    with pytest.raises(SourceFormatError) as err:
        read_mbeir("toy", root, splits=["test"])
    assert "mbeir_toy_task0_test.jsonl:2" in str(err.value) and expected in str(err.value)


def test_qrels_must_agree_with_positive_lists(tmp_path):
    root = build(tmp_path, [query("9:1", 0, txt="a", pos=["9:0"]), query("9:2", 0, txt="b", pos=["9:1"])], good_pool())
    qrels = root / "qrels" / "test" / "mbeir_toy_task0_test_qrels.txt"
    qrels.parent.mkdir(parents=True)
    qrels.write_text("9:1 0 9:0 1 0\n9:2 0 9:3 1 0\n9:5 0 9:3 1 0\n")
    out = curate(root)
    assert ("9:2", "qrels_disagree") in reasons(out)
    assert out.summary["notes"]["qrels_test_qids_without_query"] == 1
    qrels.write_text("9:1 0 9:0\n")
    with pytest.raises(SourceFormatError, match="qrels.txt:1"):
        read_mbeir("toy", root, splits=["test"])


def test_rows_in_equals_kept_plus_quarantined_per_file(tmp_path):
    pool = good_pool() + [cand("9:7", img="mbeir_images/toy/missing.png"), cand("9:1", txt="clash", modality="text")]
    queries = [query("9:1", 0, txt="a", pos=["9:0"]), query("9:2", 0, txt="", pos=["9:0"]), query("9:3", 0, txt="b", pos=["9:7"])]
    out = curate(build(tmp_path, queries, pool))
    for row in out.summary["files"].values():
        assert row["rows_in"] == row["kept"] + row["quarantined"]
    assert out.summary["rows_in"] == out.summary["kept"] + out.summary["quarantined"] == 3 + 2 * 6
    json.dumps(out.summary)  # serialisable


def test_accepts_text_image_spelling_and_did_objects(tmp_path):
    pool = good_pool() + [cand("9:5", txt="a caption", img="mbeir_images/toy/1.png", modality="text,image")]
    q = query("9:1", 0, txt="a", pos=["9:5"])
    q["pos_cand_list"] = [{"did": "9:5"}]
    out = curate(build(tmp_path, [q], pool))
    assert out.tables["queries"].column("positive_ids").to_pylist() == [["9:5"]]
    cands = {r["candidate_id"]: r["modality"] for r in out.tables["candidates"].to_pylist()}
    assert cands["9:5"] == "image,text" and out.summary["quarantined"] == 0


def test_positive_of_a_candidate_quarantined_while_reading_names_it_and_its_reason(tmp_path):
    pool = good_pool() + [cand("9:10", txt="   ", modality="text"), cand("9:11", txt="words", modality="image")]
    queries = [query("9:1", 0, txt="a", pos=["9:10"]), query("9:2", 0, txt="b", pos=["9:0"], neg=["9:11"]),
               query("9:3", 0, txt="c", pos=["9:99"])]
    out = curate(build(tmp_path, queries, pool))
    q = {x["record_id"]: x for x in out.tables["quarantine"].to_pylist() if x["table"] == "queries"}
    assert q["9:1"]["reason"] == "references_quarantined_candidate"
    assert "positive '9:10'" in q["9:1"]["detail"] and "empty_text" in q["9:1"]["detail"]
    assert q["9:2"]["reason"] == "references_quarantined_candidate"
    assert "negative '9:11'" in q["9:2"]["detail"] and "modality_mismatch" in q["9:2"]["detail"]
    assert q["9:3"]["reason"] == "positive_not_in_pool"  # an id no record carries is still "not in pool"


def _instructions(root, *lines):
    from .mbeir_fixture import HEADER
    (root / "instructions" / "query_instructions.tsv").write_text(HEADER + "".join(line + "\n" for line in lines))


def test_instruction_tsv_is_plain_text_leading_quote_kept(tmp_path):
    root = build(tmp_path, [query("9:1", 0, txt="a", pos=["9:0"])], good_pool())
    _instructions(root, 'text\timage\tToy\t9\t"Quoted" picture, please.\tB.\tC.\tD.',
                  "image\ttext\tToy\t9\tDescribe it.\tCaption it.\tFind a caption.\tRetrieve text.")
    prompts, _ = read_instructions(root / "instructions" / "query_instructions.tsv")
    assert prompts[(9, "text", "image")] == ['"Quoted" picture, please.', "B.", "C.", "D."]
    q = curate(root).tables["queries"].to_pylist()[0]
    assert q["instruction_options"] == ['"Quoted" picture, please.', "B.", "C.", "D."]


def test_instruction_tsv_unbalanced_quote_swallows_nothing(tmp_path):
    root = build(tmp_path, [query("9:1", 0, txt="a", pos=["9:0"]), query("9:2", 3, img="mbeir_images/toy/1.png",
                                                                        pos=["9:0"])], good_pool())
    _instructions(root, 'text\timage\tToy\t9\t"Unbalanced prompt.\tB.\tC.\tD.',
                  "image\ttext\tToy\t9\tDescribe it.\tCaption it.\tFind a caption.\tRetrieve text.")
    prompts, _ = read_instructions(root / "instructions" / "query_instructions.tsv")
    assert prompts[(9, "text", "image")] == ['"Unbalanced prompt.', "B.", "C.", "D."]
    assert prompts[(9, "image", "text")] == ["Describe it.", "Caption it.", "Find a caption.", "Retrieve text."]


def test_instruction_tsv_with_too_many_fields_names_file_and_line(tmp_path):
    root = build(tmp_path, [query("9:1", 0, txt="a", pos=["9:0"])], good_pool())
    _instructions(root, "text\timage\tToy\t9\tA.\tB.\tC.\tD.", "image\ttext\tToy\t9\tA.\tB.\tC.\tD.\tE.")
    with pytest.raises(SourceFormatError, match=r"query_instructions.tsv:3: expected 4 to 8 tab-separated fields"):
        read_mbeir("toy", root, splits=["test"])


def test_instruction_options_hold_all_prompts_and_instruction_is_one_of_them(tmp_path):
    queries = [query(f"9:{i}", 0, txt=f"text {i}", pos=["9:0"]) for i in range(1, 9)]
    q = curate(build(tmp_path, queries, good_pool())).tables["queries"].to_pylist()
    four = ["Find the picture.", "Show me an image.", "Retrieve an image.", "Locate the image."]
    assert all(r["instruction_options"] == four and r["instruction"] in four for r in q)
    assert all(r["original_text"] == r["text"] for r in q)
