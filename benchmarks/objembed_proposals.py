"""Benchmark: an object embedder's time per image by proposal count (ObjEmbed: every object of an image in one
forward pass), against the same model's whole-image forward.

    python benchmarks/objembed_proposals.py [--images 16] [--proposals 1 10 50 100] [--repeats 5]

Builds the tiny Qwen2-VL, makes an object embedder on it and draws scenes of the synthetic world; times one forward
over a batch of ``--images`` scenes with each proposal count (median of ``--repeats`` after a warm-up), and an
ordinary embedder's forward of the same images. Prints ms per image, the ratio to one proposal, the ratio to the
whole-image forward, and the ratio to running the whole-image forward once per proposal (what an embedder of crops
would cost).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import torch

from uniembed.data.synthetic.scenes import draw_scene
from uniembed.data.synthetic.world import corpus
from uniembed.embed.embedder import Embedder
from uniembed.embed.objects import ObjectEmbedder
from uniembed.evaluate.objects import EvalImage, time_per_image, time_whole_image
from uniembed.model.tiny import build_tiny_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--proposals", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        model = build_tiny_model(tmp / "model", corpus(0), family_name="qwen2_vl")
        rng = np.random.default_rng(0)
        images = []
        for n in range(args.images):
            scene = draw_scene(rng)
            scene.image.save(tmp / f"{n}.png")
            images.append(EvalImage(str(n), str(tmp / f"{n}.png"), np.array([o.box for o in scene.objects], float)))
        objects = ObjectEmbedder.from_base(model, device="cpu")
        whole = time_whole_image(Embedder.from_pretrained(model, device="cpu"), images, args.repeats)
        per_image = time_per_image(objects, images, args.proposals, args.repeats)
    first = per_image[min(per_image)]
    print(f"tiny Qwen2-VL, {args.images} scenes of 112 x 112 per forward, {torch.get_num_threads()} threads")
    print(f"whole-image embedder: {whole:.2f} ms per image")
    print(f"{'proposals':>10} {'ms/image':>9} {'x 1 proposal':>13} {'x whole image':>14} {'x one crop each':>16}")
    for count, ms in per_image.items():
        print(f"{count:>10} {ms:>9.2f} {ms / first:>13.2f} {ms / whole:>14.2f} {ms / (whole * count):>16.3f}")


if __name__ == "__main__":
    main()
