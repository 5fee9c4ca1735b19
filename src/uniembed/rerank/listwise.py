"""Listwise reranking at inference (UniME-V2 "Inference"; UniME-V2-Reranker, Table 3).

The reranker sees the query and the recall model's top ``depth`` candidates written "(1) ... (k)"
(:func:`uniembed.rerank.prompts.build_listwise_prompt`) and generates greedily; the first in-range "(k)" of the
generation (the released code's ``\\((\\d+)\\)``) names the candidate that best meets the query. That
candidate moves to the top; the others keep their recall order, as does the rest of the list. A
generation without a number in range, or a failed one, keeps the recall order and is counted
(``unparsed`` / ``failed``), never dropped. Every backend of the judge generates (one code path).
"""
from __future__ import annotations

from typing import Sequence

import pyarrow as pa

from ..embed.embedder import EmbedItem
from ..evaluate.rerank import RecallList
from .prompts import build_listwise_prompt, parse_listwise_answer

OK, UNPARSED, FAILED = "ok", "unparsed", "failed"
LISTWISE = pa.schema([
    pa.field("query_id", pa.string(), nullable=False),
    pa.field("setting", pa.string(), nullable=False),
    pa.field("dataset", pa.string(), nullable=False),
    pa.field("candidate_ids", pa.list_(pa.string()), nullable=False),   # the prompt's candidates, (1) first
    pa.field("generation", pa.string()),
    pa.field("choice", pa.int32()),                                     # 1-based; null: recall order kept
    pa.field("status", pa.string(), nullable=False),                    # ok | unparsed | failed
    pa.field("error", pa.string()),
])


def listwise_order(candidate_ids: Sequence[str], choice: int | None) -> list[str]:
    """``candidate_ids`` with the 1-based ``choice`` moved to the top (None: unchanged)."""
    ids = list(candidate_ids)
    if choice is None:
        return ids
    if not 1 <= choice <= len(ids):
        raise ValueError(f"choice {choice} is outside 1..{len(ids)}")
    return [ids[choice - 1], *ids[: choice - 1], *ids[choice:]]


def listwise_generate(lists: Sequence[RecallList], queries: dict[str, EmbedItem], items: dict[str, EmbedItem],
                      depth: int, backend, max_new_tokens: int = 8) -> pa.Table:
    """The table of every list's prompt and generation (LISTWISE schema), in list order: one ``generate`` call."""
    if depth < 1:
        raise ValueError(f"the listwise depth must be >= 1, got {depth}")
    tops = [list(lst.candidate_ids[:depth]) for lst in lists]
    prompts = [build_listwise_prompt(queries[lst.query_id], [items[c] for c in top]) for lst, top in zip(lists, tops)]
    generations = backend.generate(prompts, max_new_tokens) if prompts else []
    records = []
    for lst, top, gen in zip(lists, tops, generations):
        choice = parse_listwise_answer(gen.text, len(top)) if gen.status == OK else None
        status = FAILED if gen.status != OK else OK if choice is not None else UNPARSED
        records.append({"query_id": lst.query_id, "setting": lst.setting, "dataset": lst.dataset, "candidate_ids": top,
                        "generation": gen.text, "choice": choice, "status": status, "error": gen.error})
    return pa.Table.from_pylist(records, LISTWISE)


def listwise_orders(lists: Sequence[RecallList], table: pa.Table, depth: int) -> list[list[str]]:
    """Each list's new order from its row of ``table`` (row i is list i's prompt: checked)."""
    if table.num_rows != len(lists):
        raise ValueError(f"{table.num_rows} listwise generations for {len(lists)} lists")
    orders = []
    for lst, row in zip(lists, table.to_pylist()):
        if (row["query_id"], row["setting"], row["candidate_ids"]) != (lst.query_id, lst.setting,
                                                                      list(lst.candidate_ids[:depth])):
            raise ValueError(f"the listwise generation of {row['query_id']} ({row['setting']}) is not for list "
                             f"{lst.query_id} ({lst.setting}) and its top {depth}")
        orders.append(listwise_order(row["candidate_ids"], row["choice"]) + list(lst.candidate_ids[depth:]))
    return orders


def listwise_rerank(lists: Sequence[RecallList], queries: dict[str, EmbedItem], items: dict[str, EmbedItem],
                    depth: int, backend, max_new_tokens: int = 8) -> tuple[list[list[str]], pa.Table]:
    """Each list's new order and the table of its prompt's generation (LISTWISE schema), in list order."""
    table = listwise_generate(lists, queries, items, depth, backend, max_new_tokens)
    return listwise_orders(lists, table, depth), table
