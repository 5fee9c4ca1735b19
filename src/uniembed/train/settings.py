"""Training settings in three sections: the run, the optimiser, LoRA; plus the objective's own.

A recipe's training stage (``recipe.pretrain.stages.<name>``, ``recipe.train_hn.<objective>``)::

    max_steps: 250
    batch_size: 24
    optimizer: {lr: 1.0e-3, warmup_steps: 10}
    lora: {r: 8, alpha: 16}
    objective: {name: info_nce, temperature: 0.05, learnable_temperature: true}

The objective section is checked by the objective named in it
(:mod:`uniembed.train.objectives`); everything else by these dataclasses.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Any

from ..ranges import Range

@dataclass
class OptimizerSettings:
    """AdamW with a warmup + decay schedule (any transformers scheduler name) and gradient clipping."""
    lr: Annotated[float, Range(gt=0)]  # AdamW learning rate
    weight_decay: Annotated[float, Range(ge=0)] = 0.0  # AdamW weight decay
    warmup_steps: Annotated[int, Range(ge=0)] = 0  # linear warmup steps
    schedule: str = "cosine"  # any transformers scheduler name (cosine, linear, constant, ...)
    max_grad_norm: Annotated[float, Range(gt=0)] = 1.0  # gradient clipping


@dataclass
class LoraSettings:
    """LoRA on the decoder only; ``target`` None is the model family's pattern (its attention and MLP
    projections, :attr:`uniembed.model.families.base.Family.lora_target`), a regex replaces it."""
    r: Annotated[int, Range(ge=1)] = 8  # LoRA rank
    alpha: Annotated[int, Range(gt=0)] = 16  # LoRA alpha (scale alpha / r)
    dropout: Annotated[float, Range(ge=0, lt=1)] = 0.0  # LoRA dropout
    target: str | None = None  # a regex of module names; null: the family's decoder projections


@dataclass
class TrainSettings:
    max_steps: Annotated[int, Range(ge=1)]  # optimizer steps
    batch_size: Annotated[int, Range(ge=2)]  # global batch (queries per step, all processes); data.BatchSampler needs 2
    optimizer: OptimizerSettings  # AdamW + schedule
    objective: dict[str, Any]        # {"name": ..., the objective's settings}
    lora: LoraSettings = field(default_factory=LoraSettings)  # the adapter
    chunk_size: Annotated[int, Range(ge=1)] | None = None  # gradient caching chunk (items per forward); None = off
    backend: str = "ddp"             # "ddp" (plain torch / DDP) or "deepspeed_zero2"
    activation_checkpointing: bool = False  # recompute activations in backward (memory for time)
    seed: Annotated[int, Range(ge=0)] = 0  # data order, LoRA init and dropout
    save_every: Annotated[int, Range(ge=1)] = 50  # steps between resumable checkpoints
    log_every: Annotated[int, Range(ge=1)] = 10  # steps between logged metrics (TensorBoard, training_summary.json)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainSettings":
        """Build from a recipe section (nested dicts), refusing unknown keys with their names."""
        values = dict(values)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown training setting(s) {unknown}; expected {sorted(known)}")
        values["optimizer"] = OptimizerSettings(**values["optimizer"])
        values["lora"] = LoraSettings(**values.get("lora", {}))
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def variant_kind(spec: dict[str, Any]) -> str:
    """What an ablation variant is: ``model`` (a model of the run, e.g. the shared start of U-MARVEL
    Table 13: evaluated once, not trained), ``distill`` (U-MARVEL §3.3 distillation continued from
    another variant's model of the same seed) or ``train_hn`` (a hard-negative objective with changes)."""
    return "model" if "model" in spec else "distill" if "distill_from" in spec else "train_hn"


def ablation_entry(recipe: dict[str, Any], study: str, variant: str) -> dict[str, Any] | None:
    """The training entry of a variant of ``recipe["ablations"][study]``: its base hard-negative objective
    entry (``recipe["train_hn"]["objectives"][base]``) or, for a distillation variant, ``recipe["distill"]
    ["train"]``, with the variant's changes; None for a ``model`` variant (nothing is trained). An
    ``objective`` naming another objective replaces the base's objective section; otherwise it updates it."""
    spec = dict(recipe["ablations"][study]["variants"][split_judged_variant(variant)[0]])
    kind = variant_kind(spec)
    if kind == "model":
        return None
    if kind == "distill":
        spec.pop("distill_from")
        entry = dict(recipe["distill"]["train"])
    else:
        entry = dict(recipe["train_hn"]["objectives"][spec.pop("base")])
    objective = spec.pop("objective", {})
    if objective.get("name", entry["objective"]["name"]) != entry["objective"]["name"]:
        entry["objective"] = dict(objective)
    else:
        entry["objective"] = {**entry["objective"], **objective}
    return {**entry, **spec}


# The judge-quality study (a study with ``judge_aucs``): each variant that trains on judged hard negatives is
# repeated once per simulated judge's ROC-AUC, as "<variant>@auc<AUC>", on that judge's filtered table.
JUDGED_MARK = "@auc"


def judged_variant(variant: str, auc: float) -> str:
    """The name of ``variant`` trained on the negatives of a simulated judge of ROC-AUC ``auc`` (e.g. soft_labels@auc0.9)."""
    return f"{variant}{JUDGED_MARK}{auc:g}"


def split_judged_variant(name: str) -> tuple[str, float | None]:
    """``(variant, auc)`` of a name :func:`judged_variant` made; ``(name, None)`` for a plain variant."""
    variant, mark, auc = name.partition(JUDGED_MARK)
    return (variant, float(auc)) if mark else (name, None)


def trains_on_judged_negatives(recipe: dict[str, Any], study: str, variant: str) -> bool:
    """A hard-negative variant whose objective reads negatives (num_negatives > 0): what a judge's quality can move."""
    entry = ablation_entry(recipe, study, variant)
    return variant_kind(recipe["ablations"][study]["variants"][variant]) == "train_hn" and \
        entry["objective"].get("num_negatives", 0) > 0


def study_variants(recipe: dict[str, Any], study: str) -> list[str]:
    """Every variant a study trains or evaluates: its own, then (with ``judge_aucs``) each one that trains on judged
    negatives repeated per simulated judge's ROC-AUC (:func:`judged_variant`)."""
    spec = recipe["ablations"][study]
    plain = list(spec["variants"])
    judged = [v for v in plain if trains_on_judged_negatives(recipe, study, v)]
    return plain + [judged_variant(v, auc) for auc in spec.get("judge_aucs") or () for v in judged]
