"""Config schemas of object embeddings (ObjEmbed, seed 002): ``data.regions`` (region sets in public formats) and
``recipe.objembed`` (training and evaluation; `snakemake objembed`, not part of `all`). :mod:`.config_schema` checks
them with the rest of the config when the workflow is parsed."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Annotated, Optional

from .ranges import Range

Count = Annotated[int, Range(ge=1)]
REGION_LABELS = ("phrase", "category")
OBJEMBED_KEY_DOCS = {
    "recipe.objembed": "object embeddings (ObjEmbed; `snakemake objembed`, not part of `all`); null: none",
    "recipe.objembed.train": "the object embedder's training (one model per seed, tags objembed_seed<N>)",
    "recipe.objembed.train.from": "the model tag the object embedder is made on",
    "recipe.objembed.train.seeds": "one trained model per seed",
    "data.regions.<name>.train": "ObjEmbed training files of the set: {file, labels: phrase | category}",
}


@dataclass
class RegionTraining:
    file: str    # ObjEmbed's training jsonl, relative to the set's root
    labels: str  # phrase (a referring expression, unique in its image) | category (a detection label, true anywhere)

    def __post_init__(self):
        if self.labels not in REGION_LABELS:
            raise ValueError(f"labels must be one of {REGION_LABELS}, got {self.labels!r}")


@dataclass
class RegionSource:
    root: str                  # the set's root: every image path and file below is relative to it
    proposals: str             # {image: [[x1, y1, x2, y2], ...]} for every training and evaluation image
    train: list[RegionTraining] = field(default_factory=list)
    grounding: Optional[str] = None        # RefCOCO in MDETR/GLIP's refexp format
    local_retrieval: Optional[str] = None  # SORCE-1K's jsonl
    global_retrieval: Optional[str] = None  # ObjEmbed's jsonl of evaluation images: their short and long captions


@dataclass
class ObjEmbedEvaluation:
    """``recipe.objembed`` without its training (added by :func:`objembed_schema`)."""
    regions: str                 # the region set of data.regions it trains and is evaluated on
    baselines: list[str]         # whole-image embedders of the run (model tags) on the same local-retrieval queries
    batch_size: Count = 16       # images per forward in evaluation
    timing_proposals: list[Count] = field(default_factory=lambda: [1, 10, 50])   # the time-per-image table's rows


def objembed_schema(training_stage: type) -> type:
    """``recipe.objembed``: :class:`ObjEmbedEvaluation` + ``train`` (TrainSettings, ``from`` a model tag, ``seeds``)."""
    train = dataclasses.make_dataclass("ObjEmbedTraining", [("from_", str, field(kw_only=True, metadata={"key": "from"})),
                                                            ("seeds", list[Annotated[int, Range(ge=0)]],
                                                             field(kw_only=True))], bases=(training_stage,))
    return dataclasses.make_dataclass("ObjEmbed", [("train", train, field(kw_only=True))], bases=(ObjEmbedEvaluation,))


def check_objembed(recipe: dict, error: type) -> Optional[dict]:
    """``recipe.objembed``'s seeds are non-empty and each used once; returns its training section (None without it)."""
    spec = recipe.get("objembed")
    if not spec:
        return None
    seeds = spec["train"]["seeds"]
    if not seeds or len(set(seeds)) != len(seeds):
        raise error(f"recipe.objembed.train.seeds: expected at least one seed, each once, got {seeds}")
    return spec["train"]


def check_region_set(recipe: dict, data: dict, error: type) -> None:
    """``recipe.objembed.regions`` names a region set of ``data.regions`` with training files and the three
    evaluation files (the workflow checks this with the run's other cross-group keys)."""
    spec = recipe.get("objembed")
    if not spec:
        return
    regions = data.get("regions") or {}
    if spec["regions"] not in regions:
        raise error(f"recipe.objembed.regions = {spec['regions']!r} is not a region set of data.regions "
                    f"{sorted(regions)}")
    region = regions[spec["regions"]]
    missing = [key for key in ("train", "grounding", "local_retrieval", "global_retrieval") if not region.get(key)]
    if missing:
        raise error(f"data.regions.{spec['regions']}: recipe.objembed trains and evaluates on it, so it needs {missing}")
