"""Contrastive trainer: LoRA on the LLM (vision tower frozen), InfoNCE with in-batch (+ hard)
negatives, optional gradient caching, DDP across processes, resumable checkpoints.

U-MARVEL §3.1.3 / §3.2 and Appendix C: eq. 2 InfoNCE with cosine similarity; a learnable
temperature (Finding 4); unidirectional loss for NLI, bidirectional for image-caption pairs.
Plain torch DDP rather than DeepSpeed: gradient caching needs two backward passes per step
with control over gradient synchronisation, which ZeRO's partitioned gradients fight (a known
trap); LoRA keeps optimizer state small enough that ZeRO buys little for the embedder.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from tqdm import tqdm
from transformers import get_scheduler

from ..artifacts import atomic_path, write_json
from ..embed.cache import file_digest, fingerprint_model_dir
from ..embed.embedder import Embedder, EmbeddingMode
from ..provenance import code_version
from .backends import make_backend
from .checkpoint import discard_if_finished, mark_finished
from .data import BatchSampler, assemble_batch, load_training_set
from .distributed import gather_with_grad, world_info
from .gradcache import gradcache_step
from .losses import info_nce
from .temperature import Temperature, previous_temperature, write_final_temperature

log = logging.getLogger(__name__)
LORA_TARGET = r".*language_model\.layers\.\d+\.(self_attn\.(q|k|v|o)_proj|mlp\.(gate|up|down)_proj)"


@dataclass
class TrainSettings:
    max_steps: int
    batch_size: int                  # global contrastive batch (queries per step, all processes)
    lr: float
    chunk_size: int | None = None    # gradient caching chunk (items per forward); None = off
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"         # any transformers scheduler name
    temperature: float | str = 0.05  # a number, or "previous": the final tau of the stage that made base_model
    learnable_temperature: bool = False
    temperature_lr: float | None = None  # tau's own learning rate (no weight decay); None = lr
    temperature_min: float = 0.005
    temperature_max: float = 1.0
    bidirectional: bool = False
    num_negatives: int = 0           # hard negatives per query (from the source or a mined table)
    use_given_negatives: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target: str = LORA_TARGET
    backend: str = "ddp"             # "ddp" (plain torch / DDP) or "deepspeed_zero2"
    activation_checkpointing: bool = False
    max_grad_norm: float = 1.0
    seed: int = 0
    save_every: int = 50
    log_every: int = 10


def build_optimizer(settings: TrainSettings, trainable: list, temperature: Temperature):
    """AdamW + the warmup/decay schedule; a learnable tau is its own group (no weight decay, its own lr)."""
    groups = [{"params": trainable}]
    if settings.learnable_temperature:
        groups.append({"params": list(temperature.parameters()), "weight_decay": 0.0,
                       "lr": settings.temperature_lr if settings.temperature_lr is not None else settings.lr})
    optimizer = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
    return optimizer, get_scheduler(settings.schedule, optimizer, settings.warmup_steps, settings.max_steps)


def _global_order(rank_sizes: tuple[int, int], world: int) -> torch.Tensor:
    """Map gathered candidates ([pos_r, neg_r] per rank) back to [all positives, all negatives]."""
    b, bk = rank_sizes
    gathered = [x for r in range(world) for x in [("p", r * b + i) for i in range(b)] + [("n", r * bk + j) for j in range(bk)]]
    position = {key: n for n, key in enumerate(gathered)}
    order = [position[("p", i)] for i in range(world * b)] + [position[("n", j)] for j in range(world * bk)]
    return torch.tensor(order)


def contrastive_loss(q_local, c_local, tau, exclude, bidirectional: bool, world: int) -> torch.Tensor:
    """InfoNCE over the global batch from local embeddings (gathered with the local gradient kept)."""
    b, bk = q_local.shape[0], c_local.shape[0] - q_local.shape[0]
    q, c = gather_with_grad(q_local), gather_with_grad(c_local)
    if world > 1:
        c = c.index_select(0, _global_order((b, bk), world).to(c.device))
    mask = torch.as_tensor(exclude, device=q.device)
    return info_nce(q, c, tau, bidirectional=bidirectional, exclude=mask)


def _local(items: list, rank: int, world: int, b: int, k: int) -> tuple[list, list]:
    queries = items[0][rank * b:(rank + 1) * b]
    positives = items[1][rank * b:(rank + 1) * b]
    negatives = items[2][rank * b * k:(rank + 1) * b * k]
    return queries, positives + negatives


def train_contrastive(settings: TrainSettings, *, base_model, curated_dir, out_dir, checkpoint_dir, log_dir,
                      mode: EmbeddingMode = EmbeddingMode(), hard_negatives=None, device: str = "auto",
                      progress: bool = True, stop_after: int | None = None) -> dict:
    """Train, checkpointing every ``save_every`` steps; save adapter + merged model into ``out_dir``.

    Rerunning the same call resumes from the latest checkpoint in ``checkpoint_dir/<fingerprint>``
    (the fingerprint covers settings, embedding mode, world size, base model and data).
    ``stop_after`` ends the process-local loop early after that many steps (used to test resume).
    """
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")  # torchrun's env://
    rank, world = world_info()
    if world > 1 and torch.cuda.is_available():
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
    if settings.batch_size % world:
        raise ValueError(f"batch_size {settings.batch_size} must be divisible by the {world} processes")
    torch.manual_seed(settings.seed)
    embedder = Embedder.from_pretrained(base_model, mode=mode, device=device)
    model = get_peft_model(embedder.model, LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha,
                                                      lora_dropout=settings.lora_dropout, target_modules=settings.lora_target))
    frozen_ok = [n for n, p in model.named_parameters() if p.requires_grad and ".visual." in n]
    if frozen_ok:
        raise RuntimeError(f"vision tower parameters are trainable: {frozen_ok[:3]}")
    if settings.activation_checkpointing:
        model.enable_input_require_grads()
        model.base_model.model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        if not model.base_model.model.is_activation_checkpointing:
            raise RuntimeError("activation checkpointing was requested but the model did not enable it")
    embedder.model = model
    initial_tau = previous_temperature(base_model) if settings.temperature == "previous" else float(settings.temperature)
    temperature = Temperature(initial_tau, settings.learnable_temperature,
                              settings.temperature_min, settings.temperature_max).to(embedder.device)
    data = load_training_set(curated_dir, use_given_negatives=settings.use_given_negatives,
                             hard_negatives=hard_negatives, num_hard_negatives=settings.num_negatives)
    sampler = BatchSampler(len(data.queries), settings.batch_size, settings.seed)
    params = [p for p in model.parameters() if p.requires_grad] + list(temperature.parameters())
    optimizer, scheduler = build_optimizer(settings, [p for p in model.parameters() if p.requires_grad], temperature)
    fingerprint = {"settings": asdict(settings), "initial_temperature": initial_tau, "mode": mode.as_dict(),
                   "world_size": world, "code": code_version("train", "embed", "model"),
                   "base_model": fingerprint_model_dir(base_model, full=True),
                   "data": file_digest(Path(curated_dir) / "queries.parquet"),
                   "hard_negatives": file_digest(hard_negatives) if hard_negatives else None}
    # One checkpoint directory per run fingerprint: the same command resumes (requeue, kill), a
    # changed config, base model or data starts a fresh run instead of tripping over the old one.
    checkpoint_dir = Path(checkpoint_dir) / hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    backend = make_backend(settings.backend, model, temperature, optimizer, scheduler, params, settings, world)
    rank, world = world_info()
    embedder.model = backend.encoder
    step, history = 0, []
    if rank == 0 and discard_if_finished(checkpoint_dir):
        log.info("%s holds a finished run: training again from the start", checkpoint_dir)
    if world > 1:
        torch.distributed.barrier()
    state = backend.load(checkpoint_dir, fingerprint)
    if state is not None:
        sampler.load_state(state["sampler"])
        step, history = state["step"], state["history"]
        log.info("resumed from %s at step %d", checkpoint_dir, step)
    writer = _writer(log_dir) if rank == 0 else None
    b, k = settings.batch_size // world, settings.num_negatives
    bar = tqdm(total=settings.max_steps, initial=step, desc="train", unit="step", disable=not progress or rank)
    steps_this_run = 0
    while step < settings.max_steps and (stop_after is None or steps_this_run < stop_after):
        start = time.perf_counter()
        batch = assemble_batch(data, *sampler.next(), num_negatives=k)
        n = batch.size
        items = (batch.queries, batch.candidates[:n], batch.candidates[n:])
        q_items, c_items = _local(items, rank, world, b, k)
        loss_fn = lambda q, c: contrastive_loss(q, c, temperature(), batch.exclude, settings.bidirectional, world)  # noqa: E731
        if settings.chunk_size:
            loss = gradcache_step(embedder.forward, q_items, c_items, loss_fn, settings.chunk_size, no_sync=backend.no_sync)
        else:
            loss = loss_fn(embedder.forward(q_items), embedder.forward(c_items))
            backend.backward(loss)
            loss = loss.detach()
        backend.step()
        step, steps_this_run = step + 1, steps_this_run + 1
        record = {"step": step, "loss": float(loss), "temperature": temperature.value, "lr": backend.lr,
                  "items_per_s": (len(q_items) + len(c_items)) * world / (time.perf_counter() - start)}
        history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}", tau=f"{record['temperature']:.4f}")
        if writer and (step % settings.log_every == 0 or step == settings.max_steps):
            for key in ("loss", "temperature", "lr", "items_per_s"):
                writer.add_scalar(f"train/{key}", record[key], step)
        if step % settings.save_every == 0 or step == settings.max_steps:
            backend.save(checkpoint_dir, step, {"fingerprint": fingerprint, "sampler": sampler.state(), "history": history})
    bar.close()
    if writer:
        writer.close()
    if step < settings.max_steps:
        return {"finished": False, "step": step}
    summary = {"finished": True, "step": step, "final_temperature": temperature.value, "history": history,
               "source": data.source, "num_queries": len(data.queries)}
    if rank == 0:
        _save_model(model, embedder.processor, Path(out_dir), summary, temperature)
        mark_finished(checkpoint_dir)
    return summary


def _writer(log_dir):
    from torch.utils.tensorboard import SummaryWriter
    return SummaryWriter(str(log_dir))


def _save_model(model, processor, out_dir: Path, summary: dict, temperature: Temperature) -> None:
    """``out_dir/adapter`` (this stage's LoRA) and ``out_dir/model`` (base with LoRA merged: the
    next stage's starting point, loadable with from_pretrained), written atomically together."""
    with atomic_path(out_dir, directory=True) as tmp:
        model.save_pretrained(tmp / "adapter")
        merged = model.merge_and_unload()
        merged.save_pretrained(tmp / "model")
        processor.save_pretrained(tmp / "model")
        write_final_temperature(tmp / "model", temperature.value, temperature.learnable)
        write_json(summary, tmp / "training_summary.json")
