"""How big each data source is: read from its curated tables when it has been curated, else what the data
section declares (``data.sources.<name>.declared``: the published counts, estimated lengths)."""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from statistics import median

import pyarrow.compute as pc

from ..artifacts import read_parquet
from ..data.schemas import CANDIDATES, POOLS, QUERIES
from ..evaluate.mbeir import global_pool_name, pool_members

#: rows whose text is tokenized (or whose image header is read) to measure a curated source's mean lengths
SAMPLE = 2000
#: characters per token when no tokenizer is at hand (English BPE)
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class SourceSizes:
    queries: dict[str, int]         # per split
    candidates: int
    pool: int                       # candidates a mined query is searched against
    query_tokens: float             # mean text tokens (instruction included)
    candidate_tokens: float
    query_images: float             # share with an image
    candidate_images: float
    positives: float
    image_side: float | None        # median sqrt(width x height) of the sampled images (curated only)
    origin: str                     # "curated <dir>" or "declared"


def _tokens(texts: list[str], tokenizer) -> float:
    if not texts:
        return 0.0
    if tokenizer is None:
        return sum(len(t) for t in texts) / len(texts) / CHARS_PER_TOKEN
    return sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]) / len(texts)


def _sample(rows: list, seed: int = 0) -> list:
    return rows if len(rows) <= SAMPLE else random.Random(seed).sample(rows, SAMPLE)


def _image_side(paths: list[str]) -> float | None:
    from PIL import Image

    sides = []
    for path in _sample([p for p in paths if Path(p).is_file()]):
        with Image.open(path) as image:   # the header only
            sides.append((image.width * image.height) ** 0.5)
    return median(sides) if sides else None


def curated_sizes(directory: Path, tokenizer, mine_split: str | None = None, mine_pool: str = "global") -> SourceSizes:
    """A curated source's sizes (``directory``: results/<run>/curated/<source>)."""
    queries = read_parquet(directory / "queries.parquet", QUERIES)
    candidates = read_parquet(directory / "candidates.parquet", CANDIDATES)
    members = pool_members(read_parquet(directory / "pools.parquet", POOLS))
    counts = pc.value_counts(queries["split"])
    splits = dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))
    pool = candidates.num_rows
    if mine_split in splits:
        rows = queries.filter(pc.equal(queries["split"], mine_split))
        if mine_pool == "global":
            pool = len(members[global_pool_name(members, mine_split)])
        else:
            own = [len(members.get(name, ())) for name in rows["pool"].to_pylist()]
            pool = round(sum(own) / len(own)) if own else 0
    q = _sample(queries.select(["instruction", "text", "image_path", "positive_ids"]).to_pylist())
    c = _sample(candidates.select(["text", "image_path"]).to_pylist())
    images = [r["image_path"] for r in q + c if r["image_path"]]
    return SourceSizes(
        queries=splits, candidates=candidates.num_rows, pool=pool,
        query_tokens=_tokens([f"{r['instruction'] or ''} {r['text'] or ''}".strip() for r in q], tokenizer),
        candidate_tokens=_tokens([r["text"] or "" for r in c], tokenizer),
        query_images=sum(bool(r["image_path"]) for r in q) / max(len(q), 1),
        candidate_images=sum(bool(r["image_path"]) for r in c) / max(len(c), 1),
        positives=sum(len(r["positive_ids"]) for r in q) / max(len(q), 1),
        image_side=_image_side(images), origin=f"curated {directory}")


def declared_sizes(name: str, source) -> SourceSizes:
    declared = source.get("declared")
    if not declared:
        raise SystemExit(f"data.sources.{name}: not curated yet and no `declared` sizes; curate it first "
                         f"(snakemake curate) or declare its sizes (docs/real-data.md, the cost plan)")
    return SourceSizes(queries=dict(declared["queries"]), candidates=declared["candidates"], pool=declared["pool"],
                       query_tokens=declared["query_tokens"], candidate_tokens=declared["candidate_tokens"],
                       query_images=declared.get("query_images", 0.0),
                       candidate_images=declared.get("candidate_images", 0.0),
                       positives=declared.get("positives", 1.0), image_side=None, origin="declared")


def source_sizes(cfg, curated_dir: Path | None, tokenizer=None) -> dict[str, SourceSizes]:
    """Every source of ``cfg.data``: curated under ``curated_dir`` when it is there, else declared."""
    mine = (cfg.recipe.get("mine") or {})
    sizes = {}
    for name, source in cfg.data.sources.items():
        directory = Path(curated_dir) / name if curated_dir else None
        if directory is not None and (directory / "queries.parquet").is_file():
            sizes[name] = curated_sizes(directory, tokenizer, mine.get("split") if mine.get("source") == name else None,
                                        mine.get("pool", "global"))
        else:
            sizes[name] = declared_sizes(name, source)
    return sizes
