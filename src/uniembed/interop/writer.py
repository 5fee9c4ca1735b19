"""Export the filter's hard negatives (HARD_NEGATIVES + its curated source) as UniME-V2's released JSON.

Writes the exact layout of GaryGuTC/UniME-v2 ``data/example_data.json`` (see
:mod:`uniembed.interop.unime_v2_json`): one record per (query, positive with a judge score), so a query
with several judged positives gives several records, each with its own ``query_pos_scores`` as the
released loader pairs them (``Embedding/src/dataset.py``); ``hard_negatives`` / ``hard_negatives_scores``
are the filter's selection in its order (UniME-V2 §Hard Negative Sampling: the k negatives and S_h).
Texts carry ``<|image_1|>`` wherever the side has an image (a text read with a stray one keeps it);
image paths are written relative to ``image_root`` ("" when none). A text read from this format is
written back verbatim; others are composed from instruction + content
(:func:`~uniembed.interop.unime_v2_json.compose_text`).

Rows the format cannot carry are skipped and counted per reason in the returned summary: no negatives
(``no_negatives:<outcome>``), a negative without a score (``negative_without_score:<outcome>``), a
positive without a score (``positive_without_score``). A table whose scores are not a judge's P(Yes)
in [0, 1] (U-MARVEL on cosine similarity), an id missing from the curated tables, a score out of
range or an image outside ``image_root`` is an error naming the file and the query.
"""
from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path

from ..artifacts import atomic_path, read_parquet
from ..data.schemas import CANDIDATES, QUERIES
from ..mine.schemas import HARD_NEGATIVES, score_bounds
from .unime_v2_json import (NEGATIVE_SCORES, NEGATIVES, POS_IMAGE, POS_SCORE, POS_TEXT, QUERY_IMAGE, QUERY_TEXT,
                            unime_text)


def relative_image(path: str | None, image_root: str | os.PathLike, where: str) -> str:
    """``path`` relative to ``image_root`` as a POSIX path ("" for none); outside the root is an error."""
    if not path:
        return ""
    rel = os.path.relpath(os.path.abspath(path), os.path.abspath(image_root))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise ValueError(f"{where}: image {path!r} is not under the image root {str(image_root)!r}")
    return Path(rel).as_posix()


def _side(row: dict, image_root, where: str, check_instruction: bool) -> tuple[str, str]:
    """(text, image) of a curated query or candidate row in UniME-V2's layout."""
    image = relative_image(row["image_path"], image_root, where)
    return unime_text(row["original_text"], row.get("instruction"), row["text"], bool(image), check_instruction), image


def _skip_reason(row: dict) -> str | None:
    if not row["negative_ids"]:
        return f"no_negatives:{row['outcome']}"
    if any(s is None for s in row["negative_scores"]):
        return f"negative_without_score:{row['outcome']}"
    return None


def _check_score(score: float, where: str) -> float:
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise ValueError(f"{where}: score {score!r} is not a finite judge score in [0, 1]")
    return score


def _load(hard_negatives: Path, curated_dir: Path) -> tuple[list[dict], dict[str, dict], dict[str, dict]]:
    for name in ("queries.parquet", "candidates.parquet"):
        if not (curated_dir / name).is_file():
            raise ValueError(f"{curated_dir}: not a curated source directory (no {name})")
    rows = read_parquet(hard_negatives, HARD_NEGATIVES).to_pylist()
    queries = {r["query_id"]: r for r in read_parquet(curated_dir / "queries.parquet", QUERIES).to_pylist()}
    candidates = {r["candidate_id"]: r for r in read_parquet(curated_dir / "candidates.parquet", CANDIDATES).to_pylist()}
    return rows, queries, candidates


def unime_v2_records(hard_negatives: str | os.PathLike, curated_dir: str | os.PathLike,
                     image_root: str | os.PathLike) -> tuple[list[dict], Counter]:
    """The UniME-V2 records of a filter table and the skipped (query or positive) counts per reason."""
    hard_negatives, curated_dir = Path(hard_negatives), Path(curated_dir)
    rows, queries, candidates = _load(hard_negatives, curated_dir)
    records, skipped = [], Counter()
    for n, row in enumerate(rows):
        where = f"{hard_negatives}: row {n} (query {row['query_id']})"
        if score_bounds(row["strategy"], json.loads(row["params"])) != (0.0, 1.0):
            raise ValueError(f"{where}: strategy {row['strategy']!r} stores cosine scores, not a judge's P(Yes) "
                             f"in [0, 1] as UniME-V2's format needs (params {row['params']})")
        if (reason := _skip_reason(row)) is not None:
            skipped[reason] += 1
            continue
        missing = [i for i in [row["query_id"]] if i not in queries] + \
                  [i for i in row["negative_ids"] + row["positive_ids"] if i not in candidates]
        if missing:
            raise ValueError(f"{where}: ids {missing[:3]} are not in the curated tables of {curated_dir}")
        query = _side(queries[row["query_id"]], image_root, where, True)
        negatives = [list(_side(candidates[c], image_root, f"{where}, negative {c}", False)) for c in row["negative_ids"]]
        scores = [_check_score(s, f"{where}, negative {c}") for c, s in zip(row["negative_ids"], row["negative_scores"])]
        for pid, score in zip(row["positive_ids"], row["positive_scores"]):
            if score is None:
                skipped["positive_without_score"] += 1
                continue
            pos_text, pos_image = _side(candidates[pid], image_root, f"{where}, positive {pid}", False)
            records.append({QUERY_TEXT: query[0], QUERY_IMAGE: query[1], POS_TEXT: pos_text, POS_IMAGE: pos_image,
                            POS_SCORE: _check_score(score, f"{where}, positive {pid}"),
                            NEGATIVES: negatives, NEGATIVE_SCORES: scores})
    return records, skipped


def export_unime_v2_json(hard_negatives: str | os.PathLike, curated_dir: str | os.PathLike,
                         image_root: str | os.PathLike, out: str | os.PathLike) -> dict:
    """Write ``out`` (atomically) in UniME-V2's format; return counts (records, queries, skipped per reason)."""
    records, skipped = unime_v2_records(hard_negatives, curated_dir, image_root)
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(records, indent=4, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    return {"out": str(out), "records": len(records), "skipped": dict(sorted(skipped.items())),
            "hard_negatives": str(hard_negatives), "curated_dir": str(curated_dir), "image_root": str(image_root)}
