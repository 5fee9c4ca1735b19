"""Instruction data from curated TRAIN records only: the judge's exact prompt, the example kinds, no leakage."""
from __future__ import annotations

import shutil
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from PIL import Image

from uniembed.artifacts import read_parquet, write_parquet
from uniembed.data.schemas import CANDIDATES, POOLS, QUERIES
from uniembed.embed.embedder import EmbedItem
from uniembed.instruct.data import (DESCRIBE, compact_prompt, group_queries, load_instruct_data, make_example,
                                   make_group, plan_entries)
from uniembed.instruct.settings import GroupLoss, InstructMix, InstructSettings
from uniembed.judge.prompt import JUDGE_INSTRUCTION, build_judge_prompt
from uniembed.model.chat import NO, YES
from uniembed.model.families import family

END_OF_TURN = family("qwen2_vl").end_of_turn   # the tiny models here are Qwen2-VL

LEAK = "LEAK from the test split"


@pytest.fixture(scope="module")
def curated(small_world):
    return {name: small_world["curated"][name] for name in ("mbeir", "mmeb")}


def _every_example(data, seeds=(0, 1, 2)):
    entries = data.entries
    return [make_example(data, entry, np.random.default_rng([seed, i])) for seed in seeds
            for i, entry in enumerate(entries)]


def _train_ids(directory):
    table = read_parquet(directory / "queries.parquet", QUERIES)
    return set(table.filter(pc.equal(table["split"], "train"))["query_id"].to_pylist())


def test_only_train_queries_are_read(curated):
    data = load_instruct_data(curated)
    plan_entries(data, InstructMix())
    read = {q.query_id for q in data.queries}
    assert read == _train_ids(curated["mbeir"]) | _train_ids(curated["mmeb"])
    test_pool = set(pc.filter(*(lambda t: (t["candidate_id"], pc.equal(t["pool"], "union_test")))(
        read_parquet(curated["mbeir"] / "pools.parquet", POOLS))).to_pylist())
    train_pool = set(pc.filter(*(lambda t: (t["candidate_id"], pc.equal(t["pool"], "union_train")))(
        read_parquet(curated["mbeir"] / "pools.parquet", POOLS))).to_pylist())
    mbeir_candidates = {cid for cid, group in data.group_of.items() if group[0] == "mbeir"}
    assert mbeir_candidates == train_pool and not mbeir_candidates & (test_pool - train_pool)


def test_every_kind_is_made_and_judge_examples_use_the_judge_prompt(curated):
    data = load_instruct_data(curated)
    entries = plan_entries(data, InstructMix(yes=2, hard=2, random=1, answer=1, describe=1, judge_format=0.5))
    assert set(Counter(kind for kind, _, _ in entries)) == {"yes", "hard", "random", "answer", "describe"}
    rng = np.random.default_rng(0)
    head = JUDGE_INSTRUCTION.split("<Query>")[0]
    formats = Counter()
    for kind, index, detail in entries:
        query = data.queries[index]
        example = make_example(data, (kind, index, detail), rng)
        if kind in ("yes", "hard", "random"):
            style, asked = example.kind.split("_")
            formats[style] += 1
            assert asked == kind and example.answer == (YES if kind == "yes" else NO)
            assert example.parts[0][1].startswith(head if style == "judge" else "Query:")
            text = "".join(value for _, value in example.parts)
            assert text.index("Query:") < text.index("Candidates:") and text.endswith(".")
        elif kind == "describe":
            assert example.parts[0] == ("text", f"{DESCRIBE}\n") and example.answer == query.text
        else:
            assert example.kind == kind and example.answer in {data.candidates[p].text for p in query.positive_ids}
    assert formats["judge"] > 0.3 * sum(formats.values()) and formats["compact"] > 0.3 * sum(formats.values())


def test_judge_examples_render_exactly_as_the_judge_renders_a_pair(curated, tiny_qwen2vl):
    from uniembed.model.processor import load_processor

    processor = load_processor(tiny_qwen2vl)
    data = load_instruct_data(curated)
    plan_entries(data, InstructMix(hard=0, random=0, answer=0, describe=0, yes=1, judge_format=1.0))
    for entry in data.entries[:: max(1, len(data.entries) // 12)]:
        example = make_example(data, entry, np.random.default_rng(0))
        query = data.queries[entry[1]]
        pair_query = EmbedItem(query.text, query.image_path, _instruction_of(example, query))
        expected = build_judge_prompt(pair_query, data.candidates[query.positive_ids[0]])
        assert example.parts == expected.parts
        assert example.render(processor) == expected.render(processor)


def _instruction_of(example, query):
    """Which of the query's instruction options the example drew (None when it has none)."""
    if not query.instructions:
        return None
    text = example.parts[0][1].split("Query:", 1)[1]
    return next(option for option in query.instructions if text.startswith(option))


def test_hard_and_random_negatives_are_train_candidates_that_are_not_positives(curated):
    data = load_instruct_data(curated)
    plan_entries(data, InstructMix(yes=0, answer=0, describe=0, hard=2, random=3))
    rng = np.random.default_rng(0)
    by_text = {}
    for cid, item in data.candidates.items():
        by_text.setdefault((item.text, item.image_path), set()).add(cid)
    for kind, index, detail in data.entries:
        query = data.queries[index]
        example = make_example(data, (kind, index, detail), rng)
        candidate_parts = example.parts[[i for i, (k, v) in enumerate(example.parts) if "Candidates:" in v][0]:]
        image = next((v for k, v in candidate_parts if k == "image"), None)
        text = candidate_parts[-1][1].split("Candidates:")[-1][:-1] or None
        ids = by_text[(text, image)]
        assert not ids & set(query.positive_ids)
        if kind == "hard":
            assert ids & set(query.negative_ids)
        else:
            assert {data.group_of[c] for c in ids} & {data.group_of[query.positive_ids[0]]}


def _poisoned_copy(source, target):
    """A copy of a curated source whose test rows and test-only candidates carry LEAK texts and missing images."""
    shutil.copytree(source, target)
    queries = read_parquet(target / "queries.parquet", QUERIES).to_pylist()
    train_refs = {c for q in queries if q["split"] == "train" for c in (*q["positive_ids"], *q["negative_ids"])}
    pools = read_parquet(target / "pools.parquet", POOLS).to_pylist()
    train_pools = {q["pool"] for q in queries if q["split"] == "train" and q["pool"]}
    train_refs |= {p["candidate_id"] for p in pools if p["pool"] in train_pools}
    for q in queries:
        if q["split"] != "train":
            q.update(text=LEAK, image_path=str(target / "missing" / "leak.png") if q["image_path"] else None,
                     instruction=LEAK, instruction_options=[LEAK])
    candidates = read_parquet(target / "candidates.parquet", CANDIDATES).to_pylist()
    for c in candidates:
        if c["candidate_id"] not in train_refs:
            c.update(text=LEAK if c["text"] else None,
                     image_path=str(target / "missing" / "leak.png") if c["image_path"] else None)
    write_parquet(pa.Table.from_pylist(queries, schema=QUERIES), target / "queries.parquet", QUERIES)
    write_parquet(pa.Table.from_pylist(candidates, schema=CANDIDATES), target / "candidates.parquet", CANDIDATES)
    return sum(q["split"] != "train" for q in queries)


def test_no_test_record_and_no_truth_file_reaches_an_example(curated, small_world, tmp_path, monkeypatch, tiny_qwen2vl):
    """Test rows and test-only candidates are poisoned; every example of three epochs is made and collated
    (images opened) while every file read is recorded: no LEAK, no test image, no truth table, no mined list."""
    from uniembed.model.processor import load_processor
    from uniembed.train import generative

    poisoned = {name: tmp_path / name for name in curated}
    assert sum(_poisoned_copy(curated[name], poisoned[name]) for name in curated) > 0
    opened = []
    real_read, real_open = pq.read_table, Image.open
    monkeypatch.setattr(pq, "read_table", lambda path, *a, **k: opened.append(str(path)) or real_read(path, *a, **k))
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(str(path)) or real_open(path, *a, **k))
    generative._image.cache_clear()
    data = load_instruct_data(poisoned)
    plan_entries(data, InstructMix())
    examples = _every_example(data)
    for example in examples:
        assert LEAK not in example.answer and all(LEAK not in value for _, value in example.parts)
    processor = load_processor(tiny_qwen2vl)
    for start in range(0, len(examples), 64):
        generative.collate(processor, examples[start: start + 64], END_OF_TURN)
    assert opened and not [p for p in opened if "truth" in p or "leak" in p or "mined" in p or "judge" in p]
    tables = {p for p in opened if p.endswith(".parquet")}
    assert tables <= {str(poisoned[name] / f"{t}.parquet") for name in poisoned
                      for t in ("queries", "candidates", "pools")}
    assert not any(str(small_world["root"]) in p and "truth" in p for p in opened)


def test_settings_refuse_empty_sources_and_bad_sizes():
    with pytest.raises(ValueError, match="sources"):
        InstructSettings(max_steps=1, batch_size=2, lr=1e-3, sources=[])
    with pytest.raises(ValueError, match="max_steps"):
        InstructSettings(max_steps=0, batch_size=2, lr=1e-3)
    with pytest.raises(ValueError, match="mix.answer"):
        InstructMix(answer=-1)
    with pytest.raises(ValueError, match="judge_format"):
        InstructMix(judge_format=1.5)
    assert InstructSettings(max_steps=1, batch_size=2, lr=1e-3, mix={"yes": 3}).mix.yes == 3


def test_a_source_without_train_queries_is_an_error(curated, tmp_path):
    target = tmp_path / "mbeir"
    shutil.copytree(curated["mbeir"], target)
    table = read_parquet(target / "queries.parquet", QUERIES)
    write_parquet(table.filter(pc.equal(table["split"], "test")), target / "queries.parquet", QUERIES)
    with pytest.raises(ValueError, match=r"queries.parquet: no queries of split \['train'\]"):
        load_instruct_data({"mbeir": target})


def test_the_compact_prompt_is_the_judge_prompt_without_its_instruction(tmp_path):
    query, candidate = EmbedItem("a red circle", None, "Find it."), EmbedItem(None, str(tmp_path / "c.png"))
    full, compact = build_judge_prompt(query, candidate), compact_prompt(query, candidate)
    assert compact.parts[0] == ("text", "Query:Find it. a red circle, Candidates:")
    assert full.parts[0][1].endswith(compact.parts[0][1]) and full.parts[1:] == compact.parts[1:]


def test_a_group_is_the_positive_then_its_listed_and_random_non_matches_in_one_format(curated):
    data = load_instruct_data(curated)
    plan_entries(data, InstructMix())
    settings = GroupLoss(queries=2, negatives=4)
    by_text = {}
    for cid, item in data.candidates.items():
        by_text.setdefault((item.text, item.image_path), set()).add(cid)
    indices = group_queries(data)
    assert indices and all(data.queries[i].negative_ids or data.groups[data.group_of[data.queries[i].positive_ids[0]]]
                           for i in indices)
    for seed, index in enumerate(indices):
        query = data.queries[index]
        group = make_group(data, index, np.random.default_rng(seed), settings)
        assert [e.answer for e in group] == [YES] + [NO] * 4
        assert len({e.kind.split("_")[0] for e in group}) == 1                       # one prompt format
        candidates = []
        for example in group:  # the candidate's image and text, read back as in the test of single examples
            tail = example.parts[[i for i, (k, v) in enumerate(example.parts) if "Candidates:" in v][0]:]
            image = next((v for k, v in tail if k == "image"), None)
            candidates.append(by_text[(tail[-1][1].split("Candidates:")[-1][:-1] or None, image)])
        assert candidates[0] & set(query.positive_ids)
        assert not any(ids & set(query.positive_ids) for ids in candidates[1:])
        listed = min(len(query.negative_ids), 4)
        assert all(ids & set(query.negative_ids) for ids in candidates[1:1 + listed])


def test_group_settings_refuse_empty_groups():
    with pytest.raises(ValueError, match="model.instruct.group"):
        GroupLoss(queries=0)
    with pytest.raises(ValueError, match="model.instruct.group"):
        GroupLoss(negatives=0)
    assert InstructSettings(max_steps=1, batch_size=1, lr=1.0, group={"queries": 2}).group == GroupLoss(queries=2)
