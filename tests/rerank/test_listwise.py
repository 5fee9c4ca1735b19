"""Listwise reranking (UniME-V2-Reranker inference): the named candidate to the top, the recall order
otherwise; malformed or failed generations keep the recall order and are counted."""
from __future__ import annotations

import itertools

import pytest

from uniembed.embed.embedder import EmbedItem
from uniembed.evaluate.rerank import RecallList
from uniembed.judge.scoring import Generation
from uniembed.rerank.listwise import listwise_order, listwise_rerank


@pytest.mark.parametrize("n", [1, 2, 5])
def test_listwise_order_moves_exactly_the_choice(n):
    ids = [f"c{i}" for i in range(n)]
    assert listwise_order(ids, None) == ids
    for choice in range(1, n + 1):
        order = listwise_order(ids, choice)
        assert order[0] == ids[choice - 1] and sorted(order) == sorted(ids)
        assert order[1:] == [c for c in ids if c != ids[choice - 1]]   # the others in recall order
    for bad in (0, n + 1):
        with pytest.raises(ValueError):
            listwise_order(ids, bad)


class ScriptedBackend:
    """Returns the scripted generations in order and records the prompts it was given."""

    def __init__(self, generations):
        self.generations, self.prompts = list(generations), []

    def generate(self, prompts, max_new_tokens):
        self.prompts += prompts
        return [self.generations.pop(0) for _ in prompts]


def _list(qid, n=8):
    return RecallList("mbeir", "local", "D", 0, None, qid, ("c1",), tuple(f"c{i}" for i in range(n)),
                      tuple(1.0 - i / 10 for i in range(n)))


def test_generations_reorder_the_top_and_malformed_ones_keep_the_recall_order():
    lists = [_list(f"q{i}") for i in range(5)]
    items = {f"c{i}": EmbedItem(f"candidate {i}") for i in range(8)}
    queries = {f"q{i}": EmbedItem(f"query {i}") for i in range(5)}
    backend = ScriptedBackend([Generation.ok("Ans: (3)"), Generation.ok("I think (1) or (2)"), Generation.ok("Ans: 3"),
                               Generation.ok("Ans: (9)"), Generation.failed("engine died")])
    orders, table = listwise_rerank(lists, queries, items, 5, backend)
    recall = list(lists[0].candidate_ids)
    assert orders[0] == ["c2", "c0", "c1", "c3", "c4", "c5", "c6", "c7"]
    assert orders[1] == recall                                  # the first "(k)" is (1): unchanged
    assert orders[2] == orders[3] == orders[4] == recall        # no number / out of range / failed: recall order
    assert table["status"].to_pylist() == ["ok", "ok", "unparsed", "unparsed", "failed"]
    assert table["choice"].to_pylist() == [3, 1, None, None, None]
    assert table["error"].to_pylist()[4] == "engine died"
    assert all(ids == recall[:5] for ids in table["candidate_ids"].to_pylist())
    texts = ["".join(v for kind, v in p.parts if kind == "text") for p in backend.prompts]
    assert all(f"({k})" in t for t, k in itertools.product(texts, range(1, 6))) and "(6)" not in texts[0]
