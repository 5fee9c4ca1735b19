"""What a job costs on a machine: GPU-hours at a stated MFU, memory per GPU, and (on this CPU) seconds from
rates measured by a micro-benchmark of the run's own model.

Peak dense bf16 rates are the vendors' datasheet numbers without sparsity (A100/A800 SXM 312 TFLOP/s, H100 SXM
989, H200 989, L40S 362, Ascend 910B 320 as reported for U-MARVEL's hardware class). MFU is the share of peak a
job reaches: 0.3-0.5 is typical for LLM training (PaLM §4 reports 46%; Megatron-scale runs 40-55%), lower for
short-sequence embedding batches; the plan states the one it used.
"""
from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .model_cost import ModelCost
from .workload import Job

#: name -> (peak dense bf16 FLOP/s, memory in GiB)
GPUS = {"A100-80GB": (312e12, 80), "A800-80GB": (312e12, 80), "H100-SXM": (989e12, 80), "H200": (989e12, 141),
        "L40S": (362e12, 48), "Ascend-910B": (320e12, 64)}
BF16, FP32 = 2, 4


def gpu_hours(job: Job, gpu: str, mfu: float) -> float:
    return job.flops / (GPUS[gpu][0] * mfu) / 3600


def memory_gib(job: Job, cost: ModelCost, gpus: int, lora_rank: int = 16) -> float:
    """Peak memory per GPU, estimated: bf16 weights; for training the LoRA factors in fp32 with their gradients
    and Adam moments (ZeRO-2 shards the gradients and moments over ``gpus``), the activations of the
    sequences in flight (GradCache's chunk, else the per-GPU batch; with activation checkpointing each
    layer's input plus one layer's working set, else every layer's working set), and the tower's forward."""
    weights = cost.parameters * BF16
    if job.kind != "train":
        return weights / 2 ** 30
    lora = cost.lora_parameters(lora_rank)
    states = lora * FP32 + lora * (FP32 + 2 * FP32) / (gpus if job.zero2 else 1)
    per_example = job.sequences / (job.steps * job.batch)
    in_flight = job.chunk if job.chunk else per_example * job.batch / gpus
    tokens = job.text_tokens + job.images * cost.image_tokens(job.side)[1]
    per_layer = tokens * (10 * cost.hidden_size + 3 * cost.intermediate_size) * BF16
    saved = tokens * cost.hidden_size * BF16 * cost.layers + per_layer if job.checkpointing else per_layer * cost.layers
    tower = job.images * cost.image_tokens(job.side)[0] * cost.vision_attention_width * 10 * BF16
    return (weights + states + in_flight * (saved + tower)) / 2 ** 30


@dataclass(frozen=True)
class CpuRates:
    """This machine's rates on the run's models (:func:`measure_cpu`): FLOP/s per (model role, job kind), each
    measured through the code path the jobs run (embedder forward, LoRA step, the judge's one-token forward,
    processor included), and a stage process's start."""
    flops: dict[str, float]   # Job.rate_key ("role/kind", a training job "role/train/<job>") -> FLOP/s
    startup_s: float          # interpreter, imports, model load
    step_s: float = 0.0       # a training step's optimizer update beside its FLOPs (AdamW over the LoRA factors)
    save_s: float = 0.0       # one training checkpoint (trainable weights, optimizer, RNG states) written


def _items(job: Job, batch: int, image: str, words: int) -> list:
    from ..embed.embedder import EmbedItem

    with_image = round(min(job.images, 1.0) * batch)
    return [EmbedItem(" ".join(["shape"] * words), image if i < with_image else None, "Find it.") for i in range(batch)]


@dataclass(frozen=True)
class Timed:
    """What the micro-benchmark ran for one job kind: seconds per sequence, and the shape its FLOPs follow from
    (each sequence at its batch's padded decoder length, the batch's images per sequence)."""
    seconds: float
    padded: int
    images: float


def _seconds_per_sequence(job: Job, model_dir: str, batch: int, repeats: int) -> Timed:
    """Median seconds per sequence of ``job``'s kind at its shape, through the stages' own code."""
    import statistics
    import tempfile

    import torch
    from PIL import Image

    from ..embed.embedder import Embedder
    from ..model.processor import load_processor
    from ..train.lora import apply_lora, enable_activation_checkpointing
    from ..train.settings import LoraSettings

    image = str(Path(tempfile.mkdtemp()) / "probe.png")
    Image.new("RGB", (job.side, job.side), (200, 40, 40)).save(image)
    words = max(1, round(job.text_tokens) - 20)
    if job.kind == "score" or job.generative:
        from transformers import AutoModelForImageTextToText

        from ..judge.prompt import build_judge_prompt
        from ..model.chat import yes_no_token_ids

        processor = load_processor(model_dir)
        model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
        items = _items(job, batch, image, max(1, words // 2))
        if job.images > 2.5:   # a listwise shape: the query and its candidates in one prompt
            from ..rerank.prompts import build_listwise_prompt

            listed = max(2, round(job.images) - 1)
            prompts = [build_listwise_prompt(q, [c] * listed).render(processor) for q, c in zip(items, items[::-1])]
        else:
            prompts = [build_judge_prompt(q, c).render(processor) for q, c in zip(items, items[::-1])]
        processor.tokenizer.padding_side = "left"
        yes, no = yes_no_token_ids(processor.tokenizer)
        images = [im for _, ims in prompts for im in ims]

        def tensors():
            return processor(text=[t for t, _ in prompts], images=images or None, padding=True, return_tensors="pt")
        shape = (tensors()["input_ids"].shape[1], len(images) / len(prompts))

        if job.generative:   # a reranker's training step: LoRA, the answer tokens' loss over the full logits
            model = apply_lora(model, LoraSettings(r=8, alpha=16))
            if job.checkpointing:
                enable_activation_checkpointing(model)
            model.train()

            def run():
                inputs = tensors()
                model(**inputs, labels=inputs["input_ids"]).loss.backward()
        else:
            def run():
                with torch.no_grad():
                    model(**tensors(), logits_to_keep=1).logits[:, -1, [no, yes]].softmax(-1)
    else:
        embedder = Embedder.from_pretrained(model_dir, device="cpu")
        items = _items(job, batch, image, words)
        shape = (embedder.inputs(items).tensors["input_ids"].shape[1], sum(bool(i.image_path) for i in items) / batch)
        if job.kind == "train":
            embedder.model = apply_lora(embedder.model, LoraSettings(r=8, alpha=16))
            if job.checkpointing:
                enable_activation_checkpointing(embedder.model)
            embedder.model.train()

            def run():
                embedder.forward(items).sum().backward()
        else:
            def run():
                with torch.no_grad():
                    embedder.forward(items)
    run()   # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return Timed(statistics.median(times) / batch, *shape)


def timed_flops(job: Job, cost: ModelCost, timed: Timed) -> float:
    """FLOPs per sequence of what the micro-benchmark ran for ``job`` (its padded length, its images; a training
    step without GradCache's extra forward, the job's activation checkpointing, the judge's one-token head)."""
    if job.kind == "train":
        return cost.training_flops(0, timed.images, job.side, job.checkpointing, False, job.generative,
                                   padded_to=timed.padded)
    return cost.forward_flops(0, timed.images, job.side, head_tokens=1 if job.kind == "score" else 0,
                              padded_to=timed.padded)


def measure_cpu(jobs: list[Job], model_dirs: dict[str, str], costs: dict[str, ModelCost], batch: int = 16,
                repeats: int = 3, threads: int = 1) -> CpuRates:
    """Per (role, kind) of ``jobs``: time the largest such job's shape and turn it into FLOP/s by the same
    formula the plan counts with; and a stage process's start (imports, then the model loaded). On ``threads``
    torch threads: the embedded default's jobs run on 1 (Snakemake sets OMP_NUM_THREADS to a rule's threads)."""
    import torch
    from transformers import AutoModel

    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import uniembed.stages.train"], check=True)
    AutoModel.from_pretrained(model_dirs["model"])
    startup = time.perf_counter() - start
    rates, before = {}, torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for key in dict.fromkeys(job.rate_key for job in jobs):
            job = max((j for j in jobs if j.rate_key == key), key=lambda j: j.sequences)
            timed = _seconds_per_sequence(job, model_dirs[job.role], min(batch, job.batch or batch), repeats)
            rates[key] = timed_flops(job, costs[job.role], timed) / timed.seconds
        step, save = _step_and_save_seconds(model_dirs["model"], repeats)
    finally:
        torch.set_num_threads(before)
    return CpuRates(rates, startup, step, save)


def _step_and_save_seconds(model_dir: str, repeats: int) -> tuple[float, float]:
    """Median seconds of an AdamW update of the LoRA factors, and of writing one checkpoint of them, through the
    trainer's own code (uniembed.train.checkpoint)."""
    import statistics
    import tempfile

    import torch

    from ..embed.embedder import Embedder
    from ..train.checkpoint import save_checkpoint, trainable_state
    from ..train.lora import apply_lora
    from ..train.settings import LoraSettings

    model = apply_lora(Embedder.from_pretrained(model_dir, device="cpu").model, LoraSettings(r=8, alpha=16))
    trainable = [p for p in model.parameters() if p.requires_grad]
    for p in trainable:
        p.grad = torch.ones_like(p)
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    steps, saves = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats + 1):
            start = time.perf_counter()
            optimizer.step()
            middle = time.perf_counter()
            save_checkpoint(tmp, repeat, {"fingerprint": {}, "trainable": trainable_state(model),
                                          "optimizer": optimizer.state_dict()})
            steps.append(middle - start)
            saves.append(time.perf_counter() - middle)
    return statistics.median(steps[1:]), statistics.median(saves[1:])


def cpu_seconds(job: Job, rates: CpuRates) -> float:
    """A job's predicted seconds on this CPU: its start, its FLOPs at the rate measured for its kind (an embedder's
    encoding inside a scoring job at the encoding rate), and a training job's optimizer updates and checkpoints."""
    own = (job.flops - job.encode_flops) / rates.flops[job.rate_key]
    encode = job.encode_flops / rates.flops["model/encode"] if job.encode_flops else 0.0
    return rates.startup_s + own + encode + (job.steps or 0) * rates.step_s + job.saves * rates.save_s
