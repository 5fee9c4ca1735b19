"""Benchmark: embedding throughput with batching vs one item at a time, on the tiny model.

    python benchmarks/encode_throughput.py [--items 512] [--batch-size 32]

Encodes the same mixed items (text, image, image+text candidates of the synthetic M-BEIR pool)
both ways in one run and prints items/s and the ratio. Checks the two give the same embeddings.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from embedded_world import build_embedded_world  # benchmarks/ is the script's directory
from uniembed.embed.embedder import Embedder, EmbeddingMode
from uniembed.embed.tables import table_items


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, curated = build_embedded_world(tmp, "test")
        _, items = table_items(curated / "candidates.parquet", "candidates")
        items = (items * (args.items // len(items) + 1))[: args.items]
        embedder = Embedder.from_pretrained(model, mode=EmbeddingMode(), device="cpu")
        embedder.encode(items[:8])  # warm-up
        rates, outputs = {}, {}
        for batch_size in (1, args.batch_size):
            start = time.perf_counter()
            outputs[batch_size] = embedder.encode(items, batch_size=batch_size)
            rates[batch_size] = len(items) / (time.perf_counter() - start)
        modalities = sorted({("image" if i.image_path else "") + ("+text" if i.text else "") for i in items})
        print(f"{len(items)} items ({', '.join(modalities)}), tiny Qwen2-VL, 2 threads")
        print(f"one at a time : {rates[1]:8.1f} items/s")
        print(f"batch {args.batch_size:<7d}: {rates[args.batch_size]:8.1f} items/s")
        print(f"ratio batched/one-at-a-time: {rates[args.batch_size] / rates[1]:.2f}")
        print(f"max |difference| between the two: {np.abs(outputs[1] - outputs[args.batch_size]).max():.2e}")


if __name__ == "__main__":
    main()
