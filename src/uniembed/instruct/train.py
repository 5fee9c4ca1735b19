"""Generative training of the tiny instruct MLLM (design.md §5): every weight, vision tower included.

This simulates the backbone's pretraining + instruction tuning, which real runs inherit from
Qwen2-VL-7B-Instruct; every later stage keeps the vision tower frozen. Batches of
:mod:`.data` examples, next-token cross-entropy on the answer tokens only
(:mod:`uniembed.train.generative`), AdamW with warmup and a schedule, gradient clipping. With
``group`` settings each step adds ``group.queries`` groups (:func:`.data.make_group`: a positive and
its non-matches, all asked the judge's question) and the listwise term :func:`group_loss` over
their Yes/No margins; the groups' answer tokens join the answer-token loss. With ``world`` settings it
adds ``world.groups`` groups of fresh questions from the world's rules (:mod:`.world`) the same way.

Resumable exactly as the contrastive trainer (:mod:`uniembed.train.checkpoint`): checkpoints of
the weights, optimizer, scheduler, every RNG and the sampler position under
``checkpoint_dir/<run fingerprint>/`` (settings, base model weights, data, code version); a
rerun of a killed job resumes bit-exact, a finished run (marked) trains again from the start.
The result is ``out_dir/model`` (model + processor + the files a downloaded checkpoint has,
:mod:`uniembed.model.saving`) and ``out_dir/training_summary.json``, written atomically together.
"""
from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm
from transformers import get_scheduler

from ..artifacts import atomic_path, write_json
from ..embed.cache import file_digest, fingerprint_model_dir
from ..model.chat import yes_no_token_ids
from ..model.families import family_of
from ..model.loading import load_for_generation, set_bidirectional
from ..model.processor import load_processor
from ..model.saving import write_model_files
from ..provenance import code_version
from ..train.checkpoint import (discard_if_finished, load_latest, mark_finished, restore, save_checkpoint,
                                trainable_state)
from ..train.data import BatchSampler
from ..train.generative import answer_forward, collate
from .data import group_queries, load_instruct_data, make_example, make_group, plan_entries
from .settings import InstructSettings
from .world import WorldQuestions

log = logging.getLogger(__name__)
CURATED_FILES = ("queries.parquet", "candidates.parquet", "pools.parquet")


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def data_fingerprint(curated_dir: Path, sources) -> dict:
    """Digests of the curated tables the instruct data is built from (a changed table = a fresh run)."""
    return {source: {name: file_digest(curated_dir / source / name) for name in CURATED_FILES
                     if (curated_dir / source / name).is_file()} for source in sources}


def train_instruct(settings: InstructSettings, *, base_model, curated_dir, out_dir, checkpoint_dir, log_dir,
                   device: str = "auto", progress: bool = True, stop_after: int | None = None) -> dict:
    """Train ``base_model`` into an instruct model on ``curated_dir/<source>`` train records; save to ``out_dir``.

    ``stop_after`` ends this process's loop after that many steps (to test resume).
    """
    curated_dir, dev = Path(curated_dir), _device(device)
    torch.manual_seed(settings.seed)
    processor = load_processor(base_model)
    model = set_bidirectional(load_for_generation(base_model), False).to(dev).train()
    family = family_of(model)
    if settings.freeze_vision:
        frozen = set(family.frozen_parameters(model))
        for name, parameter in model.named_parameters():
            if name in frozen:
                parameter.requires_grad_(False)
    data = load_instruct_data({source: curated_dir / source for source in settings.sources})
    entries = plan_entries(data, settings.mix)
    log.info("instruct data: %d train queries of %s, %d candidates; %d examples per epoch %s",
             len(data.queries), settings.sources, len(data.candidates), len(entries),
             dict(Counter(kind for kind, _, _ in entries)))
    sampler = BatchSampler(len(entries), settings.batch_size, settings.seed)
    yes_id, no_id = yes_no_token_ids(processor.tokenizer)
    grouped = group_queries(data) if settings.group is not None else []
    if settings.group is not None and len(grouped) < settings.group.queries:
        raise ValueError(f"model.instruct.group.queries={settings.group.queries}, but only {len(grouped)} train "
                         "queries have a non-matching candidate to build a group from")
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = get_scheduler(settings.schedule, optimizer, settings.warmup_steps, settings.max_steps)
    fingerprint = {"settings": asdict(settings),
                   "code": code_version("instruct", "train.generative", "model", "data.synthetic"),
                   "base_model": fingerprint_model_dir(base_model, full=True),
                   "data": data_fingerprint(curated_dir, settings.sources), "device_type": dev.type}
    key = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:16]
    checkpoint_dir = Path(checkpoint_dir) / key
    if discard_if_finished(checkpoint_dir):
        log.info("%s holds a finished run: training again from the start", checkpoint_dir)
    step, history = 0, []
    state = load_latest(checkpoint_dir, fingerprint)
    if state is not None:
        restore(state, model, optimizer, scheduler, {})
        sampler.load_state(state["sampler"])
        step, history = state["step"], state["history"]
        log.info("resumed from %s at step %d", checkpoint_dir, step)
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(log_dir))
    bar = tqdm(total=settings.max_steps, initial=step, desc="instruct", unit="step", disable=not progress,
               mininterval=1.0)
    steps_this_run = 0
    scratch = tempfile.TemporaryDirectory(prefix="instruct-world-") if settings.world is not None else None
    world = WorldQuestions(scratch.name) if scratch is not None else None
    while step < settings.max_steps and (stop_after is None or steps_this_run < stop_after):
        start = time.perf_counter()
        indices, rng = sampler.next()
        examples = [make_example(data, entries[i], rng) for i in indices]
        listwise_terms = []   # (name, settings, rows): each group kind's rows follow the previous kind's
        if settings.group is not None:
            rows = [example for index in rng.choice(grouped, settings.group.queries, replace=False)
                    for example in make_group(data, int(index), rng, settings.group)]
            listwise_terms.append(("group", settings.group, rows))
        if world is not None:
            rows = [example for g in range(settings.world.groups)
                    for example in world.group(rng, settings.world.negatives, f"{step}-{g}")]
            listwise_terms.append(("world", settings.world, rows))
        examples += [example for _, _, rows in listwise_terms for example in rows]
        batch = {k: v.to(dev) for k, v in collate(processor, examples, family.end_of_turn).items()}
        row_sums, lengths, first = answer_forward(model, batch)
        loss = row_sums.sum() / lengths.sum()
        parts = {"loss_answers": float(loss.detach())} if listwise_terms else {}
        offset = len(indices)
        for name, term, rows in listwise_terms:
            listwise = group_loss(first[offset:offset + len(rows)], yes_id, no_id, term.negatives + 1)
            parts[f"loss_{name}"] = float(listwise.detach())
            loss = loss + term.weight * listwise
            offset += len(rows)
        per_row = row_sums.detach() / lengths
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step, steps_this_run = step + 1, steps_this_run + 1
        record = {"step": step, "loss": float(loss.detach()), "lr": scheduler.get_last_lr()[0],
                  "examples_per_s": len(examples) / (time.perf_counter() - start),
                  **parts, **_loss_by_kind(examples, per_row)}
        history.append(record)
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.3f}")
        if step % settings.log_every == 0 or step == settings.max_steps:
            for name, value in record.items():
                if name != "step":
                    writer.add_scalar(f"instruct/{name}", value, step)
        if step % settings.save_every == 0 or step == settings.max_steps:
            save_checkpoint(checkpoint_dir, step, {
                "fingerprint": fingerprint, "sampler": sampler.state(), "history": history,
                "trainable": trainable_state(model), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()})
    bar.close()
    writer.close()
    if scratch is not None:
        scratch.cleanup()
    if step < settings.max_steps:
        return {"finished": False, "step": step}
    summary = {"finished": True, "step": step, "history": history, "sources": list(settings.sources),
               "train_queries": len(data.queries), "examples_per_epoch": len(entries),
               "epochs": step * settings.batch_size / len(entries)}
    with atomic_path(out_dir, directory=True, manifest=True) as tmp:
        write_model_files(model.eval(), processor, tmp / "model")
        write_json(summary, tmp / "training_summary.json")
    mark_finished(checkpoint_dir)
    return summary


def group_loss(first_logits: torch.Tensor, yes_id: int, no_id: int, size: int) -> torch.Tensor:
    """Listwise cross-entropy over groups of ``size`` consecutive rows, the first of each its positive:
    mean over groups of -log softmax(m)[0] with m = logit(Yes) - logit(No) at each row's answer position."""
    if first_logits.shape[0] % size:
        raise ValueError(f"{first_logits.shape[0]} group rows are not a multiple of the group size {size}")
    margins = (first_logits[:, yes_id] - first_logits[:, no_id]).view(-1, size)
    return F.cross_entropy(margins, margins.new_zeros(margins.shape[0], dtype=torch.long))


def _loss_by_kind(examples, per_row: torch.Tensor) -> dict[str, float]:
    """Mean answer loss of each example kind in the batch (``loss_<kind>``), for TensorBoard."""
    sums, counts = Counter(), Counter()
    for example, value in zip(examples, per_row.tolist()):
        sums[example.kind] += value
        counts[example.kind] += 1
    return {f"loss_{kind}": sums[kind] / counts[kind] for kind in sorted(counts)}
