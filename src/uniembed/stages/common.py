"""What several stage entry points share: required arguments, the model section a rule makes, the input loader's
settings, the cached embedder."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from omegaconf import OmegaConf

from ..data.loader import LoaderSettings
from ..embed.cache import CachedEmbeddings
from ..embed.embedder import Embedder, EmbeddingMode
from ..embed.tables import embed_table, table_part_plan


def require(stage, *keys: str) -> None:
    """Stop with a clear message when a rule did not pass ``stage.<key>``."""
    for key in keys:
        if not stage[key]:
            raise SystemExit(f"stage.{key} is required")


MODEL_ROLES = ("model", "judge_model")   # the model sections a DAG builds: the embedder's, the judge's


def model_section(cfg):
    """The model section ``stage.role`` names (``model``: the embedder's; ``judge_model``: the judge's)."""
    role = cfg.stage.role
    if role not in MODEL_ROLES:
        raise SystemExit(f"stage.role = {role!r}: expected one of {list(MODEL_ROLES)}")
    return cfg[role]


def loader_settings(cfg) -> LoaderSettings:
    """``recipe.loader`` (the data-loader workers that prepare model inputs); absent: the defaults (no workers).
    Rules leave it out of their rerun key (``rule_settings``): results are identical for any worker count."""
    section = cfg.recipe.get("loader")
    return LoaderSettings(**OmegaConf.to_container(section, resolve=True)) if section is not None else LoaderSettings()


def load_embedder(cfg, model_dir, adapter_dir=None) -> Embedder:
    """``model_dir`` (+ adapter) with ``recipe.embedding`` on ``recipe.device`` and ``recipe.loader``'s workers."""
    mode = EmbeddingMode(**OmegaConf.to_container(cfg.recipe.embedding))
    return Embedder.from_pretrained(model_dir, adapter_dir, mode, device=cfg.recipe.device, loader=loader_settings(cfg))


def cached_embedder(cfg, model_dir, adapter_dir=None, *, gather_only: bool = False) -> Callable[..., CachedEmbeddings]:
    """Load ``model_dir`` (+ adapter) with ``recipe.embedding`` on ``recipe.device``; return
    ``embed(curated_source_dir, "queries" | "candidates", ids, part=None)`` going through the embedding cache
    (``part=(p, N)``: encode part p of N and return its plan; ``gather_only``: assemble the parts' shards, encode
    nothing). ``embed.plan(curated_source_dir, kind, ids, part)`` is the plan of a part, computed without encoding."""
    embedder = load_embedder(cfg, model_dir, adapter_dir)
    ev = cfg.recipe.evaluate
    where = dict(model_dir=model_dir, adapter_dir=adapter_dir, dtype=ev.cache_dtype, shard_size=ev.shard_size)

    def embed(source_dir: Path, kind: str, ids: Sequence[str], part: tuple[int, int] | None = None):
        return embed_table(embedder, Path(source_dir) / f"{kind}.parquet", kind, cfg.stage.cache_dir, ids=ids,
                           batch_size=ev.batch_size, progress=cfg.stage.progress, part=part, gather_only=gather_only,
                           **where)

    def plan(source_dir: Path, kind: str, ids: Sequence[str], part: tuple[int, int]) -> dict:
        return table_part_plan(embedder, Path(source_dir) / f"{kind}.parquet", kind, ids=ids, part=part, **where)
    embed.plan = plan
    return embed
