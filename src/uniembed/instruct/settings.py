"""Settings of the instruct stage (``instruct`` of a model section: ``config/judge_model/tiny.yaml``), also its config schema.

Plain dataclasses with no heavy imports: ``uniembed.config_schema`` checks the config against them
when the workflow is parsed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Optional

from ..ranges import Range

Examples = Annotated[int, Range(ge=0)]   # examples of a kind per train query (0: none)

KINDS = ("yes", "hard", "random", "answer", "describe")


@dataclass
class InstructMix:
    """How many examples of each kind one train query contributes per epoch (:mod:`.data`)."""

    yes: Examples = 2       # query + a labelled positive -> "Yes" (repeated to balance the "No"s)
    hard: Examples = 2      # query + up to this many of its own listed negatives -> "No"
    random: Examples = 1    # query + random train candidates of the positive's dataset and modality -> "No"
    answer: Examples = 1    # instruction + query -> its text-only positive (captions, VQA answers, labels)
    describe: Examples = 1  # "Describe the picture." + image-only positive -> the text-only query
    # share of Yes/No examples in the judge's full prompt; the rest in its compact tail
    judge_format: Annotated[float, Range(ge=0, le=1)] = 0.5

    def __post_init__(self):
        for kind in KINDS:
            if getattr(self, kind) < 0:
                raise ValueError(f"model.instruct.mix.{kind} must be >= 0, got {getattr(self, kind)}")
        if not 0.0 <= self.judge_format <= 1.0:
            raise ValueError(f"model.instruct.mix.judge_format must be in [0, 1], got {self.judge_format}")


@dataclass
class GroupLoss:
    """A listwise term over each sampled train query's positive and ``negatives`` non-matches, all asked
    the judge's Yes/No question: softmax over the margins logit(Yes) - logit(No), cross-entropy with
    the positive as target (UniME-V2's listwise idea on the judge's score), added with ``weight`` to
    the answer-token loss, which the group's examples join."""

    queries: Annotated[int, Range(ge=1)] = 4     # groups per step
    negatives: Annotated[int, Range(ge=1)] = 3   # per group: the query's own listed negatives, then random candidates
    weight: Annotated[float, Range(ge=0)] = 1.0  # weight of the listwise term beside the answer-token loss

    def __post_init__(self):
        if self.queries < 1 or self.negatives < 1 or self.weight < 0:
            raise ValueError(f"model.instruct.group: queries and negatives must be >= 1 and weight >= 0; got "
                             f"queries={self.queries}, negatives={self.negatives}, weight={self.weight}")


@dataclass
class WorldGroups:
    """Fresh judge questions drawn from the world's rules every step (:mod:`.world`): ``groups`` queries, each
    its genuine match and ``negatives`` non-matches in the judge's prompt, trained like the train split's
    groups (answer tokens + the listwise term, with ``weight``)."""

    groups: Annotated[int, Range(ge=1)] = 4  # world questions per step
    negatives: Annotated[int, Range(ge=1)] = 3  # non-matches per question
    weight: Annotated[float, Range(ge=0)] = 1.0  # weight of their listwise term

    def __post_init__(self):
        if self.groups < 1 or self.negatives < 1 or self.weight < 0:
            raise ValueError(f"instruct.world: groups and negatives must be >= 1 and weight >= 0; got "
                             f"groups={self.groups}, negatives={self.negatives}, weight={self.weight}")


@dataclass
class InstructSettings:
    """Generative training of the tiny model (the vision tower too unless ``freeze_vision``) on train-split records."""

    max_steps: Annotated[int, Range(ge=1)]  # optimizer steps
    batch_size: Annotated[int, Range(ge=1)]  # examples per step
    lr: Annotated[float, Range(gt=0)]  # AdamW learning rate
    sources: list[str] = field(default_factory=lambda: ["mbeir"])  # curated sources whose train split it reads
    mix: InstructMix = field(default_factory=InstructMix)  # examples of each kind per train query
    group: Optional[GroupLoss] = None  # the listwise term; null: answer tokens only
    world: Optional[WorldGroups] = None  # fresh questions from the world's rules each step; null: none
    freeze_vision: bool = False    # keep the tower (and merger) as loaded: true on a pretrained tower
    warmup_steps: Annotated[int, Range(ge=0)] = 0  # linear warmup steps
    schedule: str = "cosine"       # any transformers scheduler name
    weight_decay: Annotated[float, Range(ge=0)] = 0.0  # AdamW weight decay
    max_grad_norm: Annotated[float, Range(gt=0)] = 1.0  # gradient clipping
    seed: Annotated[int, Range(ge=0)] = 0  # data order and initialisation
    save_every: Annotated[int, Range(ge=1)] = 100  # steps between resumable checkpoints
    log_every: Annotated[int, Range(ge=1)] = 10  # steps between logged metrics

    def __post_init__(self):
        if isinstance(self.mix, dict):
            self.mix = InstructMix(**self.mix)
        if isinstance(self.group, dict):
            self.group = GroupLoss(**self.group)
        if isinstance(self.world, dict):
            self.world = WorldGroups(**self.world)
        if self.max_steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ValueError(f"model.instruct: max_steps and batch_size must be >= 1 and lr > 0; got "
                             f"max_steps={self.max_steps}, batch_size={self.batch_size}, lr={self.lr}")
        if not self.sources:
            raise ValueError("model.instruct.sources: name at least one curated source (e.g. mbeir)")
