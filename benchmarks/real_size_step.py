"""Benchmark: one LoRA training step and one judge forward of a real-size model from random weights, on CPU.

    python benchmarks/real_size_step.py [--config config/model/qwen2vl_2b.yaml] [--batch 4] [--image 336]
        [--dtype float32|bfloat16] [--json]

The published configuration (``architecture`` of a config/model/ file) is instantiated with random weights in
``dtype`` (float32 by default; bfloat16 as on a GPU, which AMX runs fast on CPU; no checkpoint is read), LoRA r16 on the family's target (UniME-V2 §4.1) with activation checkpointing,
and one InfoNCE step runs through the project's embedder (mean pooling, bidirectional) on ``batch`` text
queries and ``batch`` image+text candidates at ``image`` x ``image`` pixels (UniME-V2: 336). A second process
runs the judge's one forward (UniME-V2 §3.2: P(Yes) vs P(No) at the last position) on ``batch`` pairs. Each
phase is a fresh subprocess; peak memory is its RSS high-water mark. Printed: parameters, trainable LoRA
parameters, seconds and peak GiB per phase, and peak memory as a ratio of the weights' size (the baseline of
the same run); ``--json`` prints both phases' measurements instead (tests/families/test_real_size.py's slow test).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time, torch, yaml
from PIL import Image
from transformers import AutoModel
from uniembed.data.synthetic.world import corpus
from uniembed.model.families import family
from uniembed.model.tiny import prompt_corpus
from uniembed.model.tokenizer import train_tokenizer
phase, path, batch, side, dtype = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), getattr(torch, sys.argv[5])
torch.set_num_threads(2)
torch.manual_seed(0)
section = yaml.safe_load(open(path))
chosen = family(section["family"])
config = chosen.config_class(**section["architecture"])
processor = chosen.build_processor(train_tokenizer([*corpus(0), *prompt_corpus()], chosen), min_pixels=side * side,
                                   max_pixels=side * side)
for name, token in chosen.named_tokens.items():   # the tiny tokenizer's ids of the special tokens (vocab is real-size)
    if hasattr(config, f"{name}_id"):
        setattr(config, f"{name}_id", processor.tokenizer.convert_tokens_to_ids(token))
image = Image.new("RGB", (side, side), (200, 30, 30))
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
start = time.perf_counter()
if phase == "train":
    from uniembed.embed.embedder import EmbedItem, Embedder, EmbeddingMode
    from uniembed.train.lora import apply_lora, enable_activation_checkpointing
    from uniembed.train.settings import LoraSettings
    model = AutoModel.from_config(config, dtype=dtype)
    params = sum(p.numel() for p in model.parameters())
    built = time.perf_counter() - start
    embedder = Embedder(model, processor, EmbeddingMode(), device="cpu")
    embedder.model = apply_lora(embedder.model, LoraSettings(r=16, alpha=32))
    enable_activation_checkpointing(embedder.model)
    embedder.model.train()
    trainable = [p for p in embedder.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    queries = [EmbedItem(f"find the picture of a large red circle number {i}", None, "Retrieve the image.") for i in range(batch)]
    import tempfile, os
    tmp = tempfile.mkdtemp()
    image.save(os.path.join(tmp, "a.png"))
    candidates = [EmbedItem(f"a large red circle {i}", os.path.join(tmp, "a.png")) for i in range(batch)]
    before, step_start = rss(), time.perf_counter()
    q, c = embedder.forward(queries), embedder.forward(candidates)
    loss = torch.nn.functional.cross_entropy(q @ c.T / 0.05, torch.arange(batch))
    loss.backward()
    tower = chosen.vision_tower(embedder.model)
    lora_grads = [p.grad for n, p in embedder.model.named_parameters() if "lora_" in n and p.grad is not None]
    optimizer.step()
    result = {"parameters": params, "trainable": sum(p.numel() for p in trainable), "build_s": built,
              "step_s": time.perf_counter() - step_start, "before_gib": before, "loss": float(loss),
              "lora_with_grad": len(lora_grads), "lora_grad_norm": float(sum(g.float().norm() ** 2 for g in lora_grads) ** 0.5),
              "tower_trainable": sum(p.requires_grad for p in tower.parameters())}
else:
    from uniembed.embed.embedder import EmbedItem
    from uniembed.judge.prompt import build_judge_prompt
    from uniembed.model.chat import yes_no_token_ids
    model = chosen.model_class._from_config(config, dtype=dtype).eval()
    built = time.perf_counter() - start
    import tempfile, os
    tmp = tempfile.mkdtemp()
    image.save(os.path.join(tmp, "a.png"))
    prompts = [build_judge_prompt(EmbedItem("a large red circle", None, "Find the picture."),
                                  EmbedItem(f"a circle {i}", os.path.join(tmp, "a.png"))).render(processor)
               for i in range(batch)]
    processor.tokenizer.padding_side = "left"
    inputs = processor(text=[t for t, _ in prompts], images=[image] * batch, padding=True, return_tensors="pt")
    yes, no = yes_no_token_ids(processor.tokenizer)
    before, step_start = rss(), time.perf_counter()
    with torch.no_grad():
        logits = model(**inputs, logits_to_keep=1).logits[:, -1]
    scores = torch.softmax(logits[:, [no, yes]].double(), -1)[:, 1]
    result = {"build_s": built, "step_s": time.perf_counter() - step_start, "before_gib": before,
              "tokens": int(inputs["input_ids"].shape[1]), "scores": scores.tolist()}
result["peak_gib"] = rss()
print(json.dumps(result))
"""


def run(phase: str, config: str, batch: int, image: int, dtype: str = "float32") -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, phase, config, str(batch), str(image), dtype],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{phase} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/model/qwen2vl_2b.yaml")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--image", type=int, default=336)
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
    parser.add_argument("--json", action="store_true", help="print both phases' measurements as one JSON object")
    args = parser.parse_args()
    train = run("train", args.config, args.batch, args.image, args.dtype)
    judge = run("judge", args.config, args.batch, args.image, args.dtype)
    if args.json:
        print(json.dumps({"train": train, "judge": judge}))
        return
    weights = train["parameters"] * (4 if args.dtype == "float32" else 2) / 2**30
    print(f"{args.config}: {train['parameters'] / 1e9:.3f}B parameters ({weights:.1f} GiB {args.dtype}), "
          f"LoRA r16 trainable {train['trainable'] / 1e6:.1f}M; batch {args.batch} + {args.batch}, {args.image}px")
    for name, r in (("LoRA step (ckpt)", train), ("judge forward", judge)):
        print(f"  {name:17s} build {r['build_s']:6.1f} s  step {r['step_s']:6.1f} s  peak {r['peak_gib']:5.1f} GiB "
              f"({r['peak_gib'] / weights:.2f} x weights; {r['peak_gib'] - r['before_gib']:+.1f} GiB in the step)")


if __name__ == "__main__":
    main()
