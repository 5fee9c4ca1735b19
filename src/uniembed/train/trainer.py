"""Train an embedder: LoRA on the LLM (vision tower frozen), any objective, optional gradient
caching, DDP across processes, resumable checkpoints (U-MARVEL §3.1.3 / §3.2, UniME-V2).

:func:`train_contrastive` assembles the pieces — the objective named in ``settings.objective``
(:mod:`uniembed.train.objectives`), the :class:`~uniembed.train.embedding_task.EmbeddingTask` and
the loop of :mod:`uniembed.train.core`. Plain torch DDP rather than DeepSpeed by default:
gradient caching needs two backward passes per step with control over gradient synchronisation,
which ZeRO's partitioned gradients fight (a known trap); LoRA keeps optimizer state small enough
that ZeRO buys little for the embedder.
"""
from __future__ import annotations

from ..data.loader import LoaderSettings
from ..embed.embedder import EmbeddingMode
from .core import build_optimizer, init_distributed, run_training
from .embedding_task import EmbeddingTask
from .objembed_task import ObjectTask
from .objectives import make_objective, objective_task
from .rerank_task import RerankTask
from .objectives.base import global_order as _global_order
from .settings import LoraSettings, OptimizerSettings, TrainSettings

__all__ = ["LoraSettings", "OptimizerSettings", "TrainSettings", "build_optimizer",
           "train_contrastive", "train_objects", "train_reranker", "_global_order"]


def train_contrastive(settings: TrainSettings, *, base_model, curated_dir, out_dir, checkpoint_dir, log_dir,
                      mode: EmbeddingMode = EmbeddingMode(), hard_negatives=None, device: str = "auto",
                      progress: bool = True, stop_after: int | None = None,
                      loader: LoaderSettings = LoaderSettings()) -> dict:
    """Train, checkpointing every ``save_every`` steps; save adapter + merged model into ``out_dir``.

    Rerunning the same call resumes from the latest checkpoint in ``checkpoint_dir/<fingerprint>``
    (settings, objective, embedding mode, world size, code, base model and data); rerunning a
    finished run trains again. ``stop_after`` ends the process-local loop early (to test resume).
    ``loader`` sets the workers that prepare each step's batch (no part of the fingerprint: results do not change).
    """
    if objective_task(settings.objective.get("name")) != "embedding":
        raise ValueError(f"objective {settings.objective.get('name')!r} is not a contrastive objective")
    init_distributed()
    objective = make_objective(settings.objective, start_model=base_model)
    task = EmbeddingTask(settings, objective, base_model=base_model, curated_dir=curated_dir, mode=mode,
                         hard_negatives=hard_negatives, device=device)
    return run_training(task, objective, settings, out_dir=out_dir, checkpoint_dir=checkpoint_dir, log_dir=log_dir,
                        progress=progress, stop_after=stop_after, loader=loader)


def train_reranker(settings: TrainSettings, *, base_model, curated_dir, retrieval, out_dir, checkpoint_dir, log_dir,
                   device: str = "auto", progress: bool = True, stop_after: int | None = None,
                   loader: LoaderSettings = LoaderSettings()) -> dict:
    """Train a generative reranker (objective ``pointwise`` or ``pair_list``) with the same loop,
    checkpoints and backends as :func:`train_contrastive`; ``retrieval`` is the mined table."""
    if objective_task(settings.objective.get("name")) != "rerank":
        raise ValueError(f"objective {settings.objective.get('name')!r} is not a reranker objective")
    init_distributed()
    objective = make_objective(settings.objective, start_model=base_model)
    task = RerankTask(settings, objective, base_model=base_model, curated_dir=curated_dir, retrieval=retrieval,
                      device=device)
    return run_training(task, objective, settings, out_dir=out_dir, checkpoint_dir=checkpoint_dir, log_dir=log_dir,
                        progress=progress, stop_after=stop_after, loader=loader)


def train_objects(settings: TrainSettings, *, base_model, region_dir, out_dir, checkpoint_dir, log_dir,
                  device: str = "auto", progress: bool = True, stop_after: int | None = None,
                  loader: LoaderSettings = LoaderSettings()) -> dict:
    """Train an object embedder (objective ``objembed``, ObjEmbed §3.2) on the region tables in ``region_dir``
    with the same loop, checkpoints and backends as :func:`train_contrastive`."""
    if objective_task(settings.objective.get("name")) != "objects":
        raise ValueError(f"objective {settings.objective.get('name')!r} is not an object objective")
    init_distributed()
    objective = make_objective(settings.objective, start_model=base_model)
    task = ObjectTask(settings, objective, base_model=base_model, region_dir=region_dir, device=device)
    return run_training(task, objective, settings, out_dir=out_dir, checkpoint_dir=checkpoint_dir, log_dir=log_dir,
                        progress=progress, stop_after=stop_after, loader=loader)
