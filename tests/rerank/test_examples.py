"""Reranker prompts and training examples (U-MARVEL eq. 3 pointwise; UniME-V2 pairwise + listwise)."""
import numpy as np
import pyarrow as pa
import pytest

from uniembed.embed.embedder import EmbedItem
from uniembed.judge.pairs import JudgePair
from uniembed.judge.prompt import build_judge_prompt
from uniembed.model.chat import NO, YES
from uniembed.model.families import family
from uniembed.model.processor import load_processor
from uniembed.mine.schemas import HARD_NEGATIVES
from uniembed.rerank.examples import (RerankQuery, count_unusable, group_pairs, listwise_example, pairwise_examples,
                                      pointwise_examples, ranked_negatives)
from uniembed.rerank.prompts import build_listwise_prompt, listwise_answer, parse_listwise_answer
from uniembed.train.generative import answer_token_ids, collate

END_OF_TURN = family("qwen2_vl").end_of_turn   # the tiny models here are Qwen2-VL

QUERY = EmbedItem("a red circle", None, "Find the picture.")


def _pairs():
    pos = EmbedItem(None, "/img/pos.png")
    mined = [EmbedItem(f"cand {i}", None) for i in range(1, 6)]
    pairs = [JudgePair("q1", "p1", True, None, QUERY, pos)]
    pairs += [JudgePair("q1", f"c{i}", False, i, QUERY, item) for i, item in enumerate(mined, start=1)]
    pairs += [JudgePair("q2", "p2", True, None, QUERY, pos)]                       # no mined candidates
    pairs += [JudgePair("q3", "c9", False, 1, QUERY, mined[0])]                      # no positive
    return pairs, pos, mined


def test_queries_are_grouped_by_rank_and_unusable_ones_counted():
    pairs, pos, mined = _pairs()
    shuffled = [pairs[0], *reversed(pairs[1:6]), *pairs[6:]]
    (item,) = group_pairs(shuffled)
    assert item.query_id == "q1" and item.positives == (pos,) and item.ranked == tuple(mined)
    assert count_unusable(pairs) == {"no_positive": 1, "no_candidates": 1}


def test_pointwise_pairs_a_positive_with_yes_and_a_top_depth_candidate_with_no():
    pairs, pos, mined = _pairs()
    (item,) = group_pairs(pairs)
    seen = set()
    for seed in range(40):
        yes, no = pointwise_examples(item, np.random.default_rng(seed), depth=3)
        assert (yes.answer, no.answer) == (YES, NO)
        assert yes.parts == build_judge_prompt(QUERY, pos).parts
        seen.add(no.parts)
    assert seen == {build_judge_prompt(QUERY, m).parts for m in mined[:3]}   # only the top 3, each drawn


def test_pairwise_uses_the_hardest_candidate():
    pairs, pos, mined = _pairs()
    (item,) = group_pairs(pairs)
    yes, no = pairwise_examples(item, np.random.default_rng(0))
    assert yes.parts == build_judge_prompt(QUERY, pos).parts and no.parts == build_judge_prompt(QUERY, mined[0]).parts


def test_listwise_answer_names_the_positives_position():
    pairs, pos, mined = _pairs()
    (item,) = group_pairs(pairs)
    positions = set()
    for seed in range(30):
        example = listwise_example(item, np.random.default_rng(seed), list_size=4)
        k = parse_listwise_answer(example.answer, 4)
        positions.add(k)
        images = [value for kind, value in example.parts if kind == "image"]
        assert images == ["/img/pos.png"]                       # the positive is the one image candidate
        text = "".join(value if kind == "text" else "<img>" for kind, value in example.parts)
        assert f"({k}) <img>" in text and "(4) " in text and "(5)" not in text
    assert positions == {1, 2, 3, 4}


def test_listwise_prompt_numbers_candidates_in_order_and_parsing_is_strict():
    prompt = build_listwise_prompt(QUERY, [EmbedItem("x", None), EmbedItem("y", None)])
    text = "".join(value for kind, value in prompt.parts)
    assert text.index("(1) x") < text.index("(2) y") and "2 candidates" in text and "Find the picture. a red circle" in text
    assert listwise_answer(3) == "Ans: (3)"
    assert parse_listwise_answer("Ans: (2)", 5) == 2
    assert parse_listwise_answer("I think (7) then (2)", 5) == 2          # the first in-range "(k)"
    assert parse_listwise_answer("(9) then (2)", 5) == 2
    assert parse_listwise_answer("(0) or (6)", 5) is None                 # none in range: no answer
    assert parse_listwise_answer("(3) then (2)", 5) == 3
    assert parse_listwise_answer("Ans: 2", 5) is None
    with pytest.raises(ValueError):
        listwise_answer(0)


def test_multi_token_listwise_answers_keep_the_prompts_tokens(tiny_qwen2vl):
    """"Ans: (k)" is several tokens: its labels come from tokenising prompt + answer (prompt unchanged)."""
    processor = load_processor(tiny_qwen2vl)
    pairs, pos, mined = _pairs()
    (item,) = group_pairs(pairs)
    example = listwise_example(item, np.random.default_rng(0), list_size=3)
    example = type(example)(tuple(p for p in example.parts if p[0] == "text"), example.answer, example.kind)  # no image files here
    prompt, _ = example.render(processor)
    ids = answer_token_ids(processor.tokenizer, prompt, example.answer, END_OF_TURN)
    assert len(ids) > 2 and processor.tokenizer.decode(ids).startswith(example.answer)
    batch = collate(processor, [example], END_OF_TURN)
    assert (batch["labels"] != -100).sum() == len(ids)


def test_listwise_positions_follow_the_released_distribution_and_never_the_last():
    """UniME-V2-Reranker's released lists: 6 candidates, the positive at 1-5 with 0.32 / 0.32 / 0.20 / 0.11 / 0.05."""
    item = RerankQuery("q", QUERY, (EmbedItem("pos", "/img/pos.png"),), tuple(EmbedItem(f"n{i}") for i in range(8)))
    rng, n = np.random.default_rng(0), 4000
    counts = np.zeros(7)
    for _ in range(n):
        example = listwise_example(item, rng, list_size=6)
        text = "".join(value for kind, value in example.parts if kind == "text")
        assert "(6) " in text and "(7)" not in text                   # 6 candidates: 5 negatives + the positive
        counts[parse_listwise_answer(example.answer, 6)] += 1
    expected = np.array([0.32, 0.32, 0.20, 0.11, 0.05])
    assert counts[6] == 0                                            # never last
    assert np.abs(counts[1:6] / n - expected).max() < 0.025          # ~3 binomial sd at n = 4000
    # a list shorter than the weights renormalises over the positions it has
    short = RerankQuery("q", QUERY, item.positives, item.ranked[:1])
    drawn = {parse_listwise_answer(listwise_example(short, rng, 6).answer, 2) for _ in range(200)}
    assert drawn == {1, 2}


def test_filtered_negatives_rank_in_stored_order_without_padding_copies():
    table = pa.Table.from_pylist([
        {"query_id": "q", "negative_ids": ["b", "a", "c", "b", "a"], "negative_scores": [0.2, 0.1, 0.3, 0.2, 0.1],
         "positive_score": 0.9, "positive_ids": ["p"], "positive_scores": [0.9], "strategy": "unime_v2",
         "params": "{}", "outcome": "padded", "false_negatives_removed": 0},
        {"query_id": "r", "negative_ids": [], "negative_scores": [], "positive_score": None, "positive_ids": ["p"],
         "positive_scores": [None], "strategy": "unime_v2", "params": "{}", "outcome": "no_positive_score",
         "false_negatives_removed": 0}], HARD_NEGATIVES)
    rows = ranked_negatives(table).to_pylist()
    assert [(r["query_id"], r["rank"], r["candidate_id"]) for r in rows] == [("q", 1, "b"), ("q", 2, "a"), ("q", 3, "c")]
