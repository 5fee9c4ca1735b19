"""Benchmark: judge throughput (UniME-V2 MLLM-as-a-Judge scores) with the transformers backend, tiny model.

    python benchmarks/judge_throughput.py [--queries 24] [--per-query 10] [--batch-size 16] [--naive-pairs 96] \
        [--judge-model resources/models/tiny-judge-instruct/model]

Pairs come from the synthetic M-BEIR train queries (each query's positive + ``--per-query`` random
pool candidates as its "mined" list). Measured in one run:

* batched scoring (one forward pass with ``logits_to_keep=1`` per batch) vs a naive per-pair
  ``generate(max_new_tokens=1, output_scores=True)``, pairs/s and ratio; the two must agree;
* query-grouped batches (the pair-list order) vs the same pairs shuffled, pairs/s;
* with ``--judge-model``: that model (the embedded default's judge, config/judge_model/tiny.yaml) against the
  built embedder model that judged before it, same pairs, batch and backend, pairs/s and ratio.
"""
from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from embedded_world import build_embedded_world  # benchmarks/ is the script's directory
from uniembed.judge.pairs import build_judge_pairs
from uniembed.judge.prompt import build_judge_prompt
from uniembed.judge.transformers_backend import TransformersJudge
from uniembed.mine.schemas import MINED


def random_mined(curated: Path, n_queries: int, per_query: int, seed: int = 0) -> pa.Table:
    queries = pq.read_table(curated / "queries.parquet", columns=["query_id", "positive_ids"]).to_pylist()
    pool = pq.read_table(curated / "candidates.parquet", columns=["candidate_id"])["candidate_id"].to_pylist()
    rng = random.Random(seed)
    rows = []
    for query in rng.sample(queries, min(n_queries, len(queries))):
        chosen = rng.sample([c for c in pool if c not in set(query["positive_ids"])], per_query)
        rows += [{"query_id": query["query_id"], "rank": r, "candidate_id": c, "similarity": 1 - r / 100}
                 for r, c in enumerate(chosen, 1)]
    return pa.Table.from_pylist(rows, schema=MINED)


@torch.no_grad()
def naive_generate_scores(judge: TransformersJudge, pairs) -> list[float]:
    """One ``generate(max_new_tokens=1, output_scores=True)`` call per pair, p(Yes) / (p(Yes) + p(No))."""
    scores = []
    for pair in pairs:
        text, paths = build_judge_prompt(pair.query, pair.candidate).render(judge.processor)
        images = [Image.open(p).convert("RGB") for p in paths]
        batch = judge.processor(text=[text], images=images or None, return_tensors="pt")
        out = judge.model.generate(**batch, max_new_tokens=1, do_sample=False, output_scores=True,
                                   return_dict_in_generate=True)
        two = out.scores[0][0, [judge.no_id, judge.yes_id]].float()
        scores.append(torch.softmax(two, dim=-1)[1].item())
    return scores


def timed(fn, *args, repeats: int = 1):
    """Result and the median wall time over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args)
        times.append(time.perf_counter() - start)
    return result, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--queries", type=int, default=24)
    parser.add_argument("--per-query", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--naive-pairs", type=int, default=96, help="pairs scored by the naive generate loop")
    parser.add_argument("--repeats", type=int, default=3, help="median over this many timed runs")
    parser.add_argument("--judge-model", type=Path, default=None,
                        help="a judge model directory to compare with the built model (same pairs, batch, backend)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, curated = build_embedded_world(tmp, "train")
        pairs = build_judge_pairs(curated / "queries.parquet", curated / "candidates.parquet",
                                  random_mined(curated, args.queries, args.per_query))
        judge = TransformersJudge(model, batch_size=args.batch_size, device="cpu")
        shuffled_pairs = random.Random(1).sample(pairs, len(pairs))
        subset = pairs[: args.naive_pairs]
        judge.score(pairs), judge.score(shuffled_pairs), naive_generate_scores(judge, subset)  # warm-up

        batched, t_batched = timed(judge.score, pairs, repeats=args.repeats)
        naive, t_naive = timed(naive_generate_scores, judge, subset, repeats=args.repeats)
        shuffled, t_shuffled = timed(judge.score, shuffled_pairs, repeats=args.repeats)

        rate = {"batched": len(pairs) / t_batched, "naive": len(subset) / t_naive, "shuffled": len(pairs) / t_shuffled}
        n_images = sum(len(build_judge_prompt(p.query, p.candidate).image_paths) for p in pairs)
        diff_naive = max(abs(b.score - n) for b, n in zip(batched, naive))
        by_id = {(p.query_id, p.candidate_id): r.score for p, r in zip(shuffled_pairs, shuffled)}
        diff_shuffled = max(abs(r.score - by_id[(p.query_id, p.candidate_id)]) for p, r in zip(pairs, batched))
        print(f"{len(pairs)} pairs ({len({p.query_id for p in pairs})} queries, {n_images} images), "
              f"tiny Qwen2-VL, 2 threads, batch size {args.batch_size}, median of {args.repeats} runs")
        print(f"naive generate(max_new_tokens=1) per pair : {rate['naive']:8.1f} pairs/s ({len(subset)} pairs)")
        print(f"batched forward, logits_to_keep=1       : {rate['batched']:8.1f} pairs/s")
        print(f"ratio batched / naive                   : {rate['batched'] / rate['naive']:8.2f}")
        print(f"query-grouped batches                   : {rate['batched']:8.1f} pairs/s")
        print(f"shuffled batches                        : {rate['shuffled']:8.1f} pairs/s")
        print(f"ratio grouped / shuffled                : {rate['batched'] / rate['shuffled']:8.2f}")
        print(f"max |score difference| batched vs naive : {diff_naive:.2e}; grouped vs shuffled: {diff_shuffled:.2e}")
        if args.judge_model is not None:
            other = TransformersJudge(args.judge_model, batch_size=args.batch_size, device="cpu")
            other.score(pairs)  # warm-up
            _, t_other = timed(other.score, pairs, repeats=args.repeats)
            print(f"judge model {args.judge_model}: {len(pairs) / t_other:8.1f} pairs/s")
            print(f"ratio judge model / built model         : {t_batched / t_other:8.2f}")


if __name__ == "__main__":
    main()
