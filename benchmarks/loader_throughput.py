"""Benchmark: the embedder's input pipeline with and without DataLoader workers, and whether a GPU would wait on it.

    python benchmarks/loader_throughput.py [--items 1024] [--batch-size 32] [--workers 2] [--mfu 0.4] [--text-tokens 30] \
        [--repeats 3]

Every rate is the best of ``--repeats`` passes (0 and N workers alternating), as timeit takes the fastest
run: on a shared machine the slower passes measure the neighbours.

Measured in one run:

* items/s of the embedder's input pipeline (decode + prompts + processor of encode's batches, through
  uniembed.data.loader) with 0 workers against ``--workers`` workers, and of the whole ``Embedder.encode`` on the
  tiny Qwen2-VL (the pipeline + the forward, 2 torch threads) both ways, on the synthetic M-BEIR candidates that
  hold an image, at the embedded default's image size (56 x 56) and with the same pictures saved at 336 x 336;
  every pass must give the same embeddings;
* items/s of the CPU side alone (decode + prompts + processor, one thread) at 336 x 336 with Qwen2-VL-7B's image
  processor settings (min/max pixels 3,136 / 12,845,056: a 336 x 336 image stays 336 x 336, 576 patches, 144
  decoder tokens), against the items/s a 7B forward consumes per GPU: FLOPs per item from the project's cost
  model (uniembed.plan.model_cost, the Qwen2-VL-7B architecture of config/model/qwen2vl_7b.yaml) at ``--mfu`` of
  the GPU's peak (uniembed.plan.hardware.GPUS), for encoding (forward only) and for a LoRA training step
  (GradCache + activation checkpointing, as the 7B recipes train). It prints the share of time a GPU waits when
  the main process prepares (0 workers) and the loader cores per GPU that keep it fed.
"""
from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from PIL import Image

from embedded_world import build_embedded_world  # benchmarks/ is the script's directory
from uniembed.data.loader import LoaderSettings
from uniembed.data.loader import batches_of, prepared
from uniembed.embed.embedder import EmbedInputs, EmbedItem, Embedder, EmbeddingMode, ItemsAt
from uniembed.embed.tables import table_items
from uniembed.model.families import family_of, family
from uniembed.model.prompts import PromptStyle
from uniembed.plan.hardware import GPUS
from uniembed.plan.model_cost import model_cost

ROOT = Path(__file__).resolve().parents[1]
SEVEN_B = ROOT / "config" / "model" / "qwen2vl_7b.yaml"
#: Qwen2-VL-7B-Instruct's preprocessor_config.json
SEVEN_B_PIXELS = (56 * 56, 28 * 28 * 16384)


def resized_copies(items: list[EmbedItem], side: int, directory: Path) -> list[EmbedItem]:
    """The items with their pictures saved again at side x side (PNG, as the synthetic world's)."""
    directory.mkdir(parents=True, exist_ok=True)
    out = []
    for i, item in enumerate(items):
        path = directory / f"{i}.png"
        with Image.open(item.image_path) as image:
            image.convert("RGB").resize((side, side), Image.Resampling.BICUBIC).save(path)
        out.append(EmbedItem(item.text, str(path), item.instruction))
    return out


def encode_rate(embedder: Embedder, items: list[EmbedItem], batch_size: int, workers: int) -> tuple[float, np.ndarray]:
    """Items/s of ``encode`` with ``workers`` loader workers, and the embeddings."""
    embedder.loader = LoaderSettings(workers=workers)
    start = time.perf_counter()
    out = embedder.encode(items, batch_size=batch_size)
    return len(items) / (time.perf_counter() - start), out


def pipeline_rate(embedder: Embedder, items: list[EmbedItem], batch_size: int, workers: int) -> float:
    """Items/s of encode's input pipeline alone: every batch prepared by ``workers`` loader workers, no forward."""
    start = time.perf_counter()
    keys = [list(batch) for batch in batches_of(batch_size, len(items))]
    for _ in prepared(ItemsAt(embedder.inputs, items), keys, LoaderSettings(workers=workers)):
        pass
    return len(items) / (time.perf_counter() - start)


def prepare_rate(inputs: EmbedInputs, items: list[EmbedItem], batch_size: int) -> tuple[float, object]:
    """Items/s of decode + prompts + processor on this process's threads."""
    start = time.perf_counter()
    for begin in range(0, len(items), batch_size):
        last = inputs(items[begin: begin + batch_size])
    return len(items) / (time.perf_counter() - start), last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--mfu", type=float, default=0.4)
    parser.add_argument("--text-tokens", type=float, default=30, help="text tokens of an item besides its image")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model, curated = build_embedded_world(tmp, "test")
        _, candidates = table_items(curated / "candidates.parquet", "candidates")
        pictured = [c for c in candidates if c.image_path]
        items = (pictured * (args.items // len(pictured) + 1))[: args.items]
        with Image.open(items[0].image_path) as image:
            default_side = image.size[0]
        sizes = {f"{default_side} x {default_side} (default)": items,
                 "336 x 336": resized_copies(items, 336, tmp / "336")}
        embedder = Embedder.from_pretrained(model, mode=EmbeddingMode(), device="cpu")
        embedder.encode(items[:8])  # warm-up
        print(f"{len(items)} items with an image (synthetic M-BEIR candidates), tiny Qwen2-VL, batch {args.batch_size}, "
              f"2 torch threads in the main process, 1 per worker; best of {args.repeats} passes")
        print(f"{'':24s} {'input pipeline (decode + prompts + processor)':^42s}   {'encode (pipeline + forward)':^42s}")
        print(f"{'image size':24s} {'0 workers':>16s} {f'{args.workers} workers':>16s} {'ratio':>7s}   "
              f"{'0 workers':>16s} {f'{args.workers} workers':>16s} {'ratio':>7s}  same embeddings")
        for name, sized in sizes.items():
            pipeline = {w: max(pipeline_rate(embedder, sized, args.batch_size, w) for _ in range(args.repeats))
                        for w in (0, args.workers)}
            rates = {0: [], args.workers: []}
            for _ in range(args.repeats):
                for workers in rates:
                    rates[workers].append(encode_rate(embedder, sized, args.batch_size, workers))
            inline, pooled = (max(rate for rate, _ in rates[w]) for w in rates)
            same = all(np.array_equal(out, rates[0][0][1]) for w in rates for _, out in rates[w])
            print(f"{name:24s} {pipeline[0]:8.1f} items/s {pipeline[args.workers]:8.1f} items/s "
                  f"{pipeline[args.workers] / pipeline[0]:7.2f}   {inline:8.1f} items/s {pooled:8.1f} items/s "
                  f"{pooled / inline:7.2f}  {same}")

        torch.set_num_threads(1)
        tokenizer = embedder.processor.tokenizer
        processor = family("qwen2_vl").build_processor(tokenizer, min_pixels=SEVEN_B_PIXELS[0],
                                                      max_pixels=SEVEN_B_PIXELS[1])
        inputs = EmbedInputs(processor, PromptStyle(), family_of(embedder.model).instruction_separator)
        prepare_rate(inputs, sizes["336 x 336"][:8], 8)  # warm-up
        core_rate, last = max((prepare_rate(inputs, sizes["336 x 336"], args.batch_size) for _ in range(args.repeats)),
                              key=lambda r: r[0])
        patches = last.tensors["pixel_values"].shape[0] // len(last.prompts)
    section = yaml.safe_load(SEVEN_B.read_text())
    cost = model_cost(section)
    tokens = cost.image_tokens(336)[1]
    forward = cost.forward_flops(args.text_tokens, 1, 336)
    train = cost.training_flops(args.text_tokens, 1, 336, checkpointing=True, gradient_cache=True)
    print(f"\nCPU side at 336 x 336 with {section['name']}'s image processor settings ({patches} patches, {tokens} "
          f"image tokens per item): {core_rate:.1f} items/s on one core (decode + prompts + processor)")
    print(f"{section['name']} per item ({args.text_tokens:g} text tokens + one 336 x 336 image): forward "
          f"{forward / 1e12:.2f} TFLOP; LoRA training step with GradCache + activation checkpointing {train / 1e12:.2f} TFLOP")
    print(f"\n{'GPU at ' + format(args.mfu, '.0%') + ' MFU':18s} {'job':7s} {'GPU items/s':>11s} {'waits, 0 workers':>17s} "
          f"{'loader cores/GPU':>17s}")
    for gpu in ("H100-SXM", "A100-80GB"):
        for job, flops in (("encode", forward), ("train", train)):
            gpu_rate = GPUS[gpu][0] * args.mfu / flops
            waits = (1 / core_rate) / (1 / core_rate + 1 / gpu_rate)   # prepare, then forward, in one process
            print(f"{gpu:18s} {job:7s} {gpu_rate:11.1f} {waits:16.0%} {math.ceil(gpu_rate / core_rate):17d}")


if __name__ == "__main__":
    main()
