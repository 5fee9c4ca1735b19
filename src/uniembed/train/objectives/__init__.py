"""Training objectives: each a small ``nn.Module`` the one trainer takes.

An objective owns its parameters (the temperature), says which batch fields it needs, computes
its loss from the query and candidate *embeddings* (so gradient caching and the cross-process
gather work unchanged for every objective), records its loss parts for logging, and puts its
configuration into the run fingerprint. ``make_objective({"name": ..., ...})`` builds one.

* ``info_nce`` — U-MARVEL eq. 2: in-batch (+ hard) negatives, learnable temperature.
* ``soft_label`` — UniME-V2 eq. 2-4: symmetric KL between the embedder's and the judge's
  distributions over each query's [positive, k hard negatives].
* ``objembed`` — ObjEmbed eq. 1-4: region- and image-level focal losses and focal IoU regression (the object task).
* ``distill`` — U-MARVEL §3.3: KL from the fused recall + rerank scores to the embedder's
  cos / tau over each query's [positive, k candidates], learnable temperature.
* ``pointwise`` / ``pair_list`` — generative rerankers (U-MARVEL eq. 3; UniME-V2-Reranker): which
  chat examples a query gives and how their answer losses combine (the reranker task runs them).
"""
from __future__ import annotations

from typing import Any

from ..objective_settings import OBJECTIVE_TASKS
from .base import Objective, ObjectiveBatch
from .distill import DistillObjective, DistillSettings
from .info_nce import InfoNCEObjective, InfoNCESettings
from .objembed import ObjEmbedObjective, ObjEmbedSettings
from .rerank import PairListObjective, PairListSettings, PointwiseObjective, PointwiseSettings, RerankObjective
from .soft_label import SoftLabelObjective, SoftLabelSettings

OBJECTIVES: dict[str, tuple[type[Objective] | type[RerankObjective], type]] = {
    "info_nce": (InfoNCEObjective, InfoNCESettings),
    "soft_label": (SoftLabelObjective, SoftLabelSettings),
    "distill": (DistillObjective, DistillSettings),
    "pointwise": (PointwiseObjective, PointwiseSettings),
    "pair_list": (PairListObjective, PairListSettings),
    "objembed": (ObjEmbedObjective, ObjEmbedSettings),
}


def objective_settings(config: dict[str, Any]):
    """The settings dataclass of ``config["name"]`` filled from ``config`` (unknown keys refused)."""
    config = dict(config)
    name = config.pop("name", None)
    if name not in OBJECTIVES:
        raise ValueError(f"objective.name must be one of {sorted(OBJECTIVES)}, got {name!r}")
    settings_class = OBJECTIVES[name][1]
    try:
        return settings_class(**config)
    except TypeError as exc:
        raise ValueError(f"objective {name!r}: {exc}") from None


def objective_task(name: str) -> str:
    """The task an objective trains: ``embedding`` (contrastive) or ``rerank`` (generative)."""
    return OBJECTIVE_TASKS[name]


def make_objective(config: dict[str, Any], *, start_model=None) -> Objective | RerankObjective:
    """Build the objective ``config["name"]``; ``start_model`` resolves ``temperature: previous``."""
    settings = objective_settings(config)
    return OBJECTIVES[config["name"]][0](settings, start_model=start_model)


__all__ = ["OBJECTIVES", "Objective", "ObjectiveBatch", "RerankObjective", "make_objective", "objective_settings",
           "objective_task"]
