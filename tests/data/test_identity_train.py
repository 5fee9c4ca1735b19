"""The identity training split (M-BEIR layout): every positive shows the query's identity, every hard negative is a
look-alike (same group, another mark) in the same rendering, every identity is asked about once, no training identity
is one the evaluation or the t-SNE shows, and the M-BEIR reader curates it whole."""
import json
from collections import Counter

import pytest

from uniembed.data.curate import finalize
from uniembed.data.readers.mbeir import read_mbeir
from uniembed.data.synthetic.identity import ALL_MARKS, draw_identities
from uniembed.data.synthetic.identity_tasks import INSTRUCTIONS, held_out_keys
from uniembed.data.synthetic.identity_train import (DATASETS, NEGATIVES, rendering, training_identities,
                                                    write_identity_train)

PER_GROUP = 3


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("identity")
    counts = write_identity_train(root, seed=0, per_group=PER_GROUP)
    base = root / "identity"
    pool = {c["did"]: c for c in map(json.loads, (base / "cand_pool/global/mbeir_union_train_cand_pool.jsonl").open())}
    queries = {name: [json.loads(line) for line in (base / f"query/train/mbeir_identity{name}_train.jsonl").open()]
               for name in DATASETS}
    return root, counts, pool, queries


def _key(content: str) -> tuple:
    shape, color, mark = json.loads(content)["key"]
    return shape, color, tuple(mark)


def test_no_training_identity_is_one_the_evaluation_or_the_tsne_shows_and_each_is_asked_about_once(split):
    _, _, pool, queries = split
    held_out = held_out_keys()
    assert len(held_out) == 88   # 6 x 8 evaluated + 5 x 8 in the t-SNE
    trained = {_key(c["src_content"]) for c in pool.values()} | {
        _key(q["query_src_content"]) for rows in queries.values() for q in rows}
    assert len(trained) == 36 * PER_GROUP * len(DATASETS) and not trained & held_out
    drawn = training_identities(0, PER_GROUP)
    assert {i.key for ids in drawn.values() for i in ids} == trained
    asked = Counter(_key(q["query_src_content"]) for rows in queries.values() for q in rows)
    assert set(asked.values()) == {1} and len(asked) == len(trained)   # one record per identity, in one meta-task


def test_every_positive_shows_the_querys_identity_and_every_negative_is_a_look_alike_in_the_same_rendering(split):
    _, _, pool, queries = split
    shows = {did: json.loads(c["src_content"]) for did, c in pool.items()}
    same_rendering = 0
    for name, rows in queries.items():
        assert {q["task_id"] for q in rows} == {DATASETS[name][1]} and len(rows) == 36 * PER_GROUP
        for q in rows:
            me = json.loads(q["query_src_content"])
            (positive,) = q["pos_cand_list"]
            assert shows[positive]["identity"] == me["identity"]
            assert len(q["neg_cand_list"]) == min(NEGATIVES, PER_GROUP - 1)
            for n in q["neg_cand_list"]:
                other = shows[n]
                assert other["identity"] != me["identity"] and other["key"][:2] == me["key"][:2]  # same group
                assert other["key"][2] != me["key"][2]   # another mark
                # in the target's rendering wherever that look-alike has one
                alike = {rendering(p["picture"]) for did, p in shows.items() if p["identity"] == other["identity"]
                         and did.split(":")[0] == positive.split(":")[0]}   # its pictures in this meta-task
                target = rendering(shows[positive]["picture"])
                assert rendering(other["picture"]) == target or target not in alike
                same_rendering += rendering(other["picture"]) == target
    assert same_rendering > 0.9 * sum(len(q["neg_cand_list"]) for rows in queries.values() for q in rows)


def test_queries_ask_as_the_evaluation_does(split):
    root, _, _, queries = split
    instructions = (root / "identity/instructions/query_instructions.tsv").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[4] for line in instructions) == sorted(INSTRUCTIONS.values())
    assert all(q["query_txt"] is None for name in ("recognition", "reidentification") for q in queries[name])
    assert all(q["query_txt"].startswith("the ") for q in queries["grounding"])
    assert all(q["query_txt"].startswith("painted ") for q in queries["editing"])


def test_the_mbeir_reader_curates_the_split_whole(split):
    root, counts, pool, queries = split
    curated = finalize(read_mbeir("identity", root / "identity", splits=["train"]), validate_images=True)
    assert curated.summary["quarantined"] == 0
    assert curated.summary["tables"]["queries"] == sum(map(len, queries.values()))
    assert curated.summary["tables"]["candidates"] == len(pool) == counts[
        "identity/cand_pool/global/mbeir_union_train_cand_pool.jsonl"]
    rows = curated.tables["queries"].to_pylist()
    assert Counter(r["dataset"] for r in rows) == {f"Identity{n.capitalize()}": len(queries[n]) for n in DATASETS}
    assert all(r["negative_ids"] for r in rows) and all(r["instruction"] in INSTRUCTIONS.values() for r in rows)


def test_held_out_identities_are_never_drawn_and_too_few_marks_is_an_error():
    keep = draw_identities(seed=4, groups=2, per_group=5)
    again = draw_identities(seed=4, groups=2, per_group=5, exclude={i.key for i in keep[:3]})
    assert not {i.key for i in again} & {i.key for i in keep[:3]}
    assert draw_identities(seed=4, groups=2, per_group=5, exclude=()) == keep
    group = {(keep[0].shape, keep[0].color, m) for m in ALL_MARKS}
    with pytest.raises(ValueError, match="marks of the"):
        draw_identities(seed=4, groups=36, per_group=2, exclude=group)
