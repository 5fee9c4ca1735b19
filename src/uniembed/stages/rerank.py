"""Stage ``rerank``: recall-then-rerank evaluation of a recall model with a trained reranker (U-MARVEL⁺).

    python -m uniembed.stages.rerank --stage tag hn_umarvel+pointwise --stage model_dir RECALL_MODEL \\
        --stage reranker_dir RERANKER_MODEL --stage curated_dir DIR --stage cache_dir DIR \\
        --stage out_dir DIR --stage checkpoint_dir DIR

Retrieves every evaluation query's top ``recipe.rerank.top_k`` with the recall model (embeddings
through the cache the evaluate rule filled), scores each (query, candidate) with the reranker's
P(Yes) through the judge's backends (``recipe.rerank.scoring``: transformers, vLLM offline or a
vLLM server; resumable shards in ``checkpoint_dir``, the failed-fraction limit), fuses
S = alpha * cos + (1 - alpha) * P(Yes) and writes the evaluate stage's outputs (``scores.parquet``,
tables) plus ``rerank_scores.parquet`` (the pairs' scores) and ``rerank_summary.json``.

A listwise reranker (objective ``pair_list``, UniME-V2-Reranker) instead reads each list's top
``recipe.rerank.listwise_top_k`` (paper: 5) in one prompt and generates through the same backends;
the candidate it names moves to the top (:mod:`uniembed.rerank.listwise`); ``rerank_scores.parquet``
then holds every generation (LISTWISE schema) and the summary counts parsed, unparsed and failed ones.

With ``recipe.rerank.scoring.parts`` N > 1 the workflow runs N part jobs (``stage.part`` P of ``stage.parts`` N:
whole shards of the pairs, as the judge's parts, or whole chunks of ``queries_per_shard`` lists, into
``stage.part_dir/part-P-of-N.parquet``) and this stage then gathers them (every part verified) before fusing.

alpha is ``recipe.rerank.alpha``, or, with ``recipe.rerank.choose_alpha``, the grid value with the
best mean Recall@k over the recall + rerank lists of a held-out split's M-BEIR queries (both
settings; the same scoring run, :func:`uniembed.rerank.fusion.choose_alpha`), then applied to every
test list (M-BEIR and MMEB: MMEB has no held-out split of its own).
"""
from __future__ import annotations

import hashlib
import json
import logging
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from omegaconf import OmegaConf
from tqdm import tqdm

from ..artifacts import read_parquet, write_json, write_parquet
from ..config import stage_config
from ..config_schema import LISTWISE_TOP_K, ChooseAlpha
from ..data.schemas import CANDIDATES, QUERIES
from ..embed.embedder import EmbedItem
from ..evaluate.rerank import order_rows, recall_lists, rerank_pairs
from ..judge.failures import DEFAULT_MAX_FAILED_FRACTION, JudgeFailureError, check_failures, check_limit
from ..parts import gather_parts, part_path, part_range, write_part
from ..rerank.fusion import choose_alpha, rerank_rows
from ..rerank.listwise import FAILED, LISTWISE, OK, UNPARSED, listwise_generate, listwise_orders
from .common import cached_embedder, loader_settings, require
from .evaluate import embedded_sources, write_outputs
from .judge import open_backend, score_in_parts

log = logging.getLogger("uniembed.rerank")


def _items(cdir: Path) -> tuple[dict[str, EmbedItem], dict[str, EmbedItem]]:
    queries = read_parquet(cdir / "queries.parquet", QUERIES).select(["query_id", "text", "image_path", "instruction"])
    candidates = read_parquet(cdir / "candidates.parquet", CANDIDATES).select(["candidate_id", "text", "image_path"])
    return ({r["query_id"]: EmbedItem(r["text"], r["image_path"], r["instruction"]) for r in queries.to_pylist()},
            {r["candidate_id"]: EmbedItem(r["text"], r["image_path"]) for r in candidates.to_pylist()})


def _recalled(cfg, cached, depth: int, **which):
    """Per evaluation source of ``which``: (its recall lists in every M-BEIR setting, query items, candidate items)."""
    for src in embedded_sources(cfg, cached, **which):
        settings = cfg.recipe.evaluate.mbeir_settings if src["format"] == "mbeir" else [None]
        found = [lst for setting in settings for lst in recall_lists(
            src["format"], src["queries"], src["qv"], src["cv"], depth, setting=setting, pools=src["pools"],
            split=src["split"], datasets=src["datasets"])]
        yield (found, *_items(src["curated"]))


def _lists_and_pairs(cfg, cached, top_k: int, **which) -> tuple[list, list]:
    """The recall lists and their (query, candidate) pairs of the sources ``which`` selects."""
    lists, pairs = [], []
    for found, queries, candidates in _recalled(cfg, cached, top_k, **which):
        lists += found
        pairs += rerank_pairs(found, candidates, queries, top_k)
    return lists, pairs


def _choose(lists, scores, top_k: int, spec) -> tuple[float, dict]:
    """alpha with the best mean Recall@k over the held-out lists, and the record for rerank_summary.json."""
    held_out = {(lst.query_id, lst.setting): (list(lst.candidate_ids[:top_k]), np.array(lst.scores[:top_k]),
                                              np.array([scores[(lst.query_id, c)] for c in lst.candidate_ids[:top_k]]),
                                              set(lst.positive_ids)) for lst in lists}
    grid = spec.grid if spec.grid else tuple(np.round(np.linspace(0.0, 1.0, 11), 2))
    alpha, by_alpha = choose_alpha(held_out, spec.k, [float(a) for a in grid])
    return alpha, {"alpha": alpha, "chosen_on": spec.split, "lists": len(held_out), "k": spec.k,
                   "recall_at_k": {str(a): v for a, v in by_alpha.items()}}


def _digest(lists, depth: int) -> str:
    keys = [[lst.query_id, lst.setting, lst.dataset, list(lst.candidate_ids[:depth])] for lst in lists]
    return hashlib.sha256(json.dumps(keys).encode()).hexdigest()


def _listwise_table(cfg, chunks, depth: int) -> pa.Table:
    """The generations of ``chunks`` ((lists, query items, candidate items) each), one ``generate`` call per chunk."""
    s, r = cfg.stage, cfg.recipe.rerank
    tables = [LISTWISE.empty_table()]
    if chunks:
        log_dir = Path(s.checkpoint_dir)
        if int(s.get("parts") or 1) > 1 and s.get("part") is not None:   # a part's server logs on its own
            log_dir = part_path(log_dir, int(s.part), int(s.parts), suffix="")
            log_dir.mkdir(parents=True, exist_ok=True)
        with open_backend(r.scoring, s.reranker_dir, cfg.recipe.device, log_dir / "vllm-serve.log",
                          max_images=depth + 1, loader=loader_settings(cfg)) as backend:
            tables += [listwise_generate(found, queries, candidates, depth, backend) for found, queries, candidates
                       in tqdm(chunks, desc="listwise", unit="chunk", disable=not s.progress, mininterval=1.0)]
    return pa.concat_tables(tables)


def _listwise(cfg, cached, out: Path, limit: float) -> tuple[list, list, dict] | None:
    """Listwise reranking of every test list: (lists, their new orders, the summary); the lists are generated in
    chunks of ``recipe.rerank.scoring.queries_per_shard``, the units of a part (None for a part job)."""
    s, r = cfg.stage, cfg.recipe.rerank
    depth = int(OmegaConf.select(r, "listwise_top_k", default=LISTWISE_TOP_K))
    size = r.scoring.queries_per_shard
    lists, chunks = [], []
    for found, queries, candidates in _recalled(cfg, cached, depth):
        lists.extend(found)
        chunks += [(found[i: i + size], queries, candidates) for i in range(0, len(found), size)]
    parts, part = int(s.get("parts") or 1), s.get("part")
    plans = []
    for p in range(parts if parts > 1 else 0):
        start, stop = part_range(len(chunks), p, parts)
        own = [lst for found, _, _ in chunks[start:stop] for lst in found]
        plans.append(({"lists_digest": _digest(lists, depth), "num_lists": len(lists), "chunk": size,
                       "num_chunks": len(chunks), "part": p, "parts": parts, "chunks": [start, stop],
                       "part_digest": _digest(own, depth), "part_lists": len(own)},
                      [(lst.query_id, lst.setting, lst.dataset) for lst in own]))
    if part is not None and parts > 1:
        plan = plans[int(part)][0]
        table = _listwise_table(cfg, chunks[slice(*plan["chunks"])], depth)
        write_part(table, part_path(s.part_dir, int(part), parts), plan, LISTWISE)
        log.info("rerank %s: listwise part %s of %d, %d lists", s.tag, part, parts, table.num_rows)
        return None
    if parts > 1:
        try:
            table = gather_parts([part_path(s.part_dir, p, parts) for p in range(parts)], plans,
                                 ("query_id", "setting", "dataset"), f"rerank {s.tag}")
        except ValueError as error:
            raise SystemExit(str(error)) from None
    else:
        table = _listwise_table(cfg, chunks, depth)
    write_parquet(table, out / "rerank_scores.parquet", LISTWISE)
    counts = {status: int(pc.sum(pc.equal(table["status"], status)).as_py() or 0) for status in (OK, UNPARSED, FAILED)}
    # the judge's failure ceiling counts failed generations only: an unparsed answer is a result
    as_judged = table.set_column(table.schema.get_field_index("status"), "status",
                                 pc.if_else(pc.equal(table["status"], UNPARSED), OK, table["status"]))
    try:
        check_failures(as_judged, limit, f"rerank {s.tag}", f"errors in {out / 'rerank_scores.parquet'}")
    except JudgeFailureError as error:
        raise SystemExit(str(error)) from None
    return lists, listwise_orders(lists, table, depth), {"mode": "listwise", "depth": depth, "lists": table.num_rows,
                                                         **counts}


def _score(cfg, pairs, out: Path, limit: float) -> pa.Table | None:
    """The reranker's scores of ``pairs`` (JUDGE_SCORES; one job, or the gather of its parts), or None for a part
    job, which scores its shards into ``stage.part_dir`` (the judge's parts: :func:`score_in_parts`)."""
    s, scoring = cfg.stage, cfg.recipe.rerank.scoring
    parts, part = int(s.get("parts") or 1), s.get("part")

    def scorer(log_dir: Path):
        return open_backend(scoring, s.reranker_dir, cfg.recipe.device, log_dir / "vllm-serve.log",
                            loader=loader_settings(cfg))
    try:
        table, _ = score_in_parts(pairs, scorer, out / "rerank_scores.parquet", s.checkpoint_dir,
                                  queries_per_shard=scoring.queries_per_shard, limit=limit, progress=s.progress,
                                  part=part, parts=parts, part_dir=s.part_dir, what=f"rerank {s.tag}",
                                  using=f"{s.reranker_dir} ({scoring.backend})")
    except ValueError as error:   # a part that does not fit the gather
        raise SystemExit(str(error)) from None
    except JudgeFailureError as error:
        raise SystemExit(f"rerank {s.tag}: {error}") from None
    return None if parts > 1 and part is not None else table


def run(cfg) -> list[dict]:
    s, r = cfg.stage, cfg.recipe.rerank
    require(s, "tag", "model_dir", "reranker_dir", "curated_dir", "cache_dir", "out_dir", "checkpoint_dir")
    name = s.tag.split("+", 1)[-1]
    if name not in r.rerankers:
        raise SystemExit(f"rerank tag {s.tag!r}: expected <recall>+<reranker> with a reranker of "
                         f"recipe.rerank.rerankers {list(r.rerankers)}")
    scoring, out = r.scoring, Path(s.out_dir)
    if r.rerankers[name].objective.name == "pair_list":
        limit = check_limit(OmegaConf.select(scoring, "max_failed_fraction", default=DEFAULT_MAX_FAILED_FRACTION))
        done = _listwise(cfg, cached_embedder(cfg, s.model_dir, None), out, limit)
        if done is None:   # a part job
            return []
        lists, orders, summary = done
        write_json(summary, out / "rerank_summary.json")
        log.info("rerank %s (listwise): %s", s.tag, summary)
        rows = order_rows(lists, orders)
        for row in rows:
            row["tag"] = s.tag
        write_outputs(rows, out, s.tag)
        return rows
    choose = ChooseAlpha(**OmegaConf.to_container(r.choose_alpha)) if r.get("choose_alpha") else None
    limit = check_limit(OmegaConf.select(scoring, "max_failed_fraction", default=DEFAULT_MAX_FAILED_FRACTION))
    cached = cached_embedder(cfg, s.model_dir, None)
    lists, pairs = _lists_and_pairs(cfg, cached, r.top_k)
    if not lists:
        raise SystemExit(f"data config {cfg.data.name!r} has no source of format mbeir or mmeb to rerank")
    held_out, held_out_pairs = _lists_and_pairs(cfg, cached, r.top_k, mbeir_split=choose.split, formats=("mbeir",)) \
        if choose else ([], [])
    if choose and not held_out:
        raise SystemExit(f"recipe.rerank.choose_alpha: data config {cfg.data.name!r} has no M-BEIR source to choose on")
    pairs = sorted(pairs + held_out_pairs, key=lambda p: p.query_id)   # a query's pairs contiguous (shards, prefix caching)
    log.info("rerank %s: %d lists (+%d held-out), %d pairs with %s (%s)", s.tag, len(lists), len(held_out), len(pairs),
             s.reranker_dir, scoring.backend)
    table = _score(cfg, pairs, out, limit)
    if table is None:   # a part job
        return []
    failed = [(q, c) for q, c, st in zip(table["query_id"].to_pylist(), table["candidate_id"].to_pylist(),
                                         table["status"].to_pylist()) if st != "ok"]
    if failed:
        raise SystemExit(f"rerank {s.tag}: {len(failed)} pairs have no reranker score (e.g. {failed[:3]}); "
                         f"rerun to retry them (shards in {s.checkpoint_dir})")
    scores = dict(zip(zip(table["query_id"].to_pylist(), table["candidate_id"].to_pylist()), table["score"].to_pylist()))
    alpha, record = _choose(held_out, scores, r.top_k, choose) if choose else (r.alpha, {"alpha": r.alpha, "chosen_on": None})
    write_json({"mode": "pointwise", **record}, out / "rerank_summary.json")
    log.info("rerank %s: alpha %.2f (%s)", s.tag, alpha, f"chosen on {choose.split}" if choose else "recipe.rerank.alpha")
    rows = rerank_rows(lists, scores, r.top_k, alpha)
    for row in rows:
        row["tag"] = s.tag
    write_outputs(rows, out, s.tag)
    return rows


def main(argv=None) -> None:
    rows = run(stage_config(argv, __doc__))
    log.info("reranked: %d (benchmark, setting, dataset) rows", len(rows))


if __name__ == "__main__":
    main(sys.argv[1:])
