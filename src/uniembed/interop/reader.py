"""Read UniME-V2's released judged JSON into a curated source and a ``hard_negatives.parquet``.

The format and what had to be interpreted: :mod:`uniembed.interop.unime_v2_json` (released repo
GaryGuTC/UniME-v2, ``data/example_data.json``, ``Embedding/src/dataset.py``). Each record becomes one
train query (id ``<dataset>:<record index>``) with its positive and its hard negatives as candidates
(ids: a hash of the text as read and the image path as written, so a candidate shared by records is
one row), and one HARD_NEGATIVES row keeping the judge's scores: ``positive_scores`` =
[``query_pos_scores``], ``negative_scores`` = ``hard_negatives_scores`` (UniME-V2 eq. 3's S_c).

A record that breaks a rule is quarantined, never dropped: ``QUARANTINE.source_line`` is its index
in the list and ``detail`` starts with ``record <i>, key <key>``. Reasons: ``wrong_type`` (not an
object, a text not a string, a score not a number, a malformed pair), ``missing_key``,
``score_count_mismatch``, ``invalid_score`` (non-finite or outside [0, 1]), ``no_hard_negatives``,
``image_placeholder_mismatch`` (an image whose text lacks ``<|image_1|>``; a ``<|image_1|>`` on a side
without an image is read as text, as the released ``example_data.json`` has it for WebQA, and counted),
``path_outside_root``, ``missing_image`` / ``corrupt_image`` and ``empty_text`` (no text, no image).
A file that is not a non-empty JSON list raises :class:`~uniembed.data.errors.SourceFormatError`.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..artifacts import write_json, write_parquet
from ..data.curate import SourceRecords, finalize
from ..data.errors import SourceFormatError
from ..data.images import check_images
from ..data.paths import RootedPaths
from ..data.readers.mmeb_prompts import PLACEHOLDER, split_instruction
from ..data.schemas import IMAGE, IMAGE_TEXT, TASK_OF_MODALITIES, TEXT
from ..data.validate import modality_problem
from ..mine.schemas import HARD_NEGATIVES
from .unime_v2_json import (FALLBACK_SCORE, KEYS, NEGATIVE_SCORES, NEGATIVES, POS_IMAGE, POS_SCORE, POS_TEXT,
                            QUERY_IMAGE, QUERY_TEXT, STRATEGY)

EXPECTED = "a non-empty JSON list of UniME-V2 records (GaryGuTC/UniME-v2 data/example_data.json)"


class _Bad(Exception):
    """One record's quarantine reason; ``detail`` names the record index and the key."""

    def __init__(self, index: int, key: str, reason: str, message: str):
        super().__init__(reason)
        self.reason, self.detail = reason, f"record {index}, key {key!r}: {message}"


@dataclass(frozen=True)
class Side:
    """A query, positive or negative as read: the text as written, its parts, its image."""

    text_key: str
    image_key: str
    original: str
    rel_image: str          # the path as written ("" when none): hashed into ids, written back on export
    image: str | None       # joined to the image root
    instruction: str | None
    text: str | None
    modality: str

    def candidate_id(self, dataset: str) -> str:
        digest = hashlib.sha1("\0".join((self.original, self.rel_image)).encode()).hexdigest()[:16]
        return f"{dataset}:{digest}"


@dataclass(frozen=True)
class Judged:
    index: int
    query: Side
    positive: Side
    negatives: tuple[Side, ...]
    positive_score: float
    negative_scores: tuple[float, ...]

    def sides(self) -> tuple[Side, ...]:
        return (self.query, self.positive, *self.negatives)


def _text(value, index: int, key: str) -> str:
    if not isinstance(value, str):
        raise _Bad(index, key, "wrong_type", f"expected a string, found {type(value).__name__} {value!r:.60}")
    return value


def _image_field(value, index: int, key: str) -> str:
    if value is None:
        return ""
    return _text(value, index, key)


def _score(value, index: int, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _Bad(index, key, "wrong_type", f"expected a number, found {type(value).__name__} {value!r:.60}")
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise _Bad(index, key, "invalid_score", f"{value!r} is not a finite judge score in [0, 1]")
    return float(value)


def _side(index: int, text_key: str, text, image_key: str, image, paths: RootedPaths) -> Side:
    """Check one side's text and image and split its instruction (the MMEB reader's rule)."""
    original, rel = _text(text, index, text_key), _image_field(image, index, image_key)
    if rel and PLACEHOLDER not in original:   # the released loader would pass an image with no slot for it
        raise _Bad(index, text_key, "image_placeholder_mismatch", f"the text lacks {PLACEHOLDER} but the image is {rel!r}")
    joined = None
    if rel:
        joined, outside = paths.resolve(rel)
        if outside:
            raise _Bad(index, image_key, *outside)
    split = split_instruction(original)
    modality = IMAGE_TEXT if split.content and joined else IMAGE if joined else TEXT
    problem = modality_problem(modality, split.content, joined)
    if problem:
        raise _Bad(index, text_key, problem[0], f"{problem[1]} (text {original!r:.60}, no image)")
    return Side(text_key, image_key, original, rel, joined, split.instruction, split.content, modality)


def _negatives(record: dict, index: int, paths: RootedPaths) -> tuple[tuple[Side, ...], tuple[float, ...]]:
    pairs, scores = record[NEGATIVES], record[NEGATIVE_SCORES]
    for key, value in ((NEGATIVES, pairs), (NEGATIVE_SCORES, scores)):
        if not isinstance(value, list):
            raise _Bad(index, key, "wrong_type", f"expected a list, found {type(value).__name__} {value!r:.60}")
    if not pairs:
        raise _Bad(index, NEGATIVES, "no_hard_negatives", "an empty list: the soft-label objective needs >= 1")
    if len(scores) != len(pairs):
        raise _Bad(index, NEGATIVE_SCORES, "score_count_mismatch",
                   f"{len(scores)} scores for {len(pairs)} hard negatives")
    sides = []
    for j, pair in enumerate(pairs):
        key = f"{NEGATIVES}[{j}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise _Bad(index, key, "wrong_type", f"expected a [text, image] pair, found {pair!r:.60}")
        sides.append(_side(index, f"{key}[0]", pair[0], f"{key}[1]", pair[1], paths))
    return tuple(sides), tuple(_score(s, index, f"{NEGATIVE_SCORES}[{j}]") for j, s in enumerate(scores))


def parse_record(record, index: int, paths: RootedPaths) -> Judged:
    """One record, checked key by key in the file's order; raises :class:`_Bad` at the first problem."""
    if not isinstance(record, dict):
        raise _Bad(index, "(the record)", "wrong_type", f"expected a JSON object, found {type(record).__name__}")
    missing = [k for k in KEYS if k not in record]
    if missing:
        raise _Bad(index, missing[0], "missing_key", f"missing (record has {sorted(record)})")
    query = _side(index, QUERY_TEXT, record[QUERY_TEXT], QUERY_IMAGE, record[QUERY_IMAGE], paths)
    positive = _side(index, POS_TEXT, record[POS_TEXT], POS_IMAGE, record[POS_IMAGE], paths)
    score = _score(record[POS_SCORE], index, POS_SCORE)
    negatives, scores = _negatives(record, index, paths)
    return Judged(index, query, positive, negatives, score, scores)


def load_records(path: Path) -> list:
    """The file's JSON list; anything else is a SourceFormatError naming the file."""
    try:
        with open(path, "rb") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise SourceFormatError(path, None, EXPECTED, str(exc)) from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SourceFormatError(path, None, EXPECTED, f"invalid JSON ({exc})") from exc
    if not isinstance(data, list) or not data:
        raise SourceFormatError(path, None, EXPECTED, f"a JSON {type(data).__name__} of length {len(data)}"
                                if isinstance(data, (list, dict)) else f"a JSON {type(data).__name__}")
    return data


def read_unime_v2_json(name: str, path: str | os.PathLike, image_root: str | os.PathLike, dataset: str | None = None,
                       image_workers: int = 1, progress: bool = False) -> tuple[SourceRecords, dict[str, Judged]]:
    """The source's records (for :func:`~uniembed.data.curate.finalize`) and each query's judged record."""
    path, dataset = Path(path), dataset or name
    if not Path(image_root).is_dir():
        raise ValueError(f"{image_root}: the image root (the folder the records' image paths are relative to) "
                         f"is not a directory")
    paths, records = RootedPaths(image_root), SourceRecords(name)
    records.datasets.append(dataset=dataset, source=name)
    parsed: list[Judged | _Bad] = []
    for index, record in enumerate(load_records(path)):
        try:
            parsed.append(parse_record(record, index, paths))
        except _Bad as bad:
            parsed.append(bad)
    images = [s.image for r in parsed if isinstance(r, Judged) for s in r.sides() if s.image]
    failures = check_images(images, workers=image_workers, progress=progress)
    judged = {}
    for index, item in enumerate(parsed):
        records.rows_in[str(path)] += 1
        qid = f"{dataset}:{index}"
        if isinstance(item, Judged):
            item = next((_image_problem(index, s, failures[s.image]) for s in item.sides() if s.image in failures), item)
        if isinstance(item, _Bad):
            records.reject("queries", qid, path, index, (item.reason, item.detail))
            continue
        _add(records, path, qid, dataset, item)
        judged[qid] = item
    stray = sum(PLACEHOLDER in s.original and not s.image for r in judged.values() for s in r.sides())
    records.notes["unime_v2_json"] = {"file": str(path), "image_root": str(image_root), "records": len(parsed),
                                      "placeholder_without_image": stray}
    return records, judged


def _image_problem(index: int, side: Side, problem: tuple[str, str]) -> _Bad:
    reason, detail = problem
    return _Bad(index, side.image_key, reason, f"{reason.replace('_', ' ')} {side.rel_image!r} ({detail})")


def _add(records: SourceRecords, path: Path, qid: str, dataset: str, item: Judged) -> None:
    for side in (item.positive, *item.negatives):
        records.candidates.append(candidate_id=side.candidate_id(dataset), source=records.name, dataset=dataset,
                                  text=side.text, original_text=side.original, image_path=side.image,
                                  modality=side.modality, source_file=str(path), source_line=item.index,
                                  pool=None, counted=False)
    q = item.query
    records.queries.append(
        query_id=qid, source=records.name, dataset=dataset, task_id=TASK_OF_MODALITIES[(q.modality, item.positive.modality)],
        split="train", instruction=q.instruction, instruction_options=[q.instruction] if q.instruction else [],
        text=q.text, original_text=q.original, image_path=q.image, modality=q.modality,
        positive_ids=[item.positive.candidate_id(dataset)], negative_ids=[n.candidate_id(dataset) for n in item.negatives],
        candidate_ids=[], pool=None, source_file=str(path), source_line=item.index)


def hard_negative_table(queries: pa.Table, judged: dict[str, Judged], params: dict) -> pa.Table:
    """One HARD_NEGATIVES row per kept query, the judge's scores as the file gives them."""
    params_json, rows = json.dumps(params, sort_keys=True), []
    for qid, negative_ids, positive_ids in zip(*(queries[c].to_pylist() for c in
                                                 ("query_id", "negative_ids", "positive_ids"))):
        item = judged[qid]
        fallback = all(s == FALLBACK_SCORE for s in item.negative_scores)
        rows.append({"query_id": qid, "negative_ids": negative_ids, "negative_scores": list(item.negative_scores),
                     "positive_score": item.positive_score, "positive_ids": positive_ids,
                     "positive_scores": [item.positive_score], "strategy": STRATEGY, "params": params_json,
                     "outcome": "fallback_random" if fallback else "selected", "false_negatives_removed": 0})
    return pa.Table.from_pylist(rows, schema=HARD_NEGATIVES)


def import_unime_v2_json(json_path: str | os.PathLike, image_root: str | os.PathLike, out_dir: str | os.PathLike, *,
                         source: str = "unime_v2", dataset: str | None = None, image_workers: int = 1,
                         max_quarantined_fraction: float | None = None, progress: bool = False) -> dict:
    """Write ``out_dir/<source>/`` (the curated tables + ``summary.json``), ``out_dir/hard_negatives.parquet``
    and ``out_dir/filter_summary.json``; return that summary. More quarantined records than
    ``max_quarantined_fraction`` (of the file) is a ValueError naming the file, and nothing is written."""
    records, judged = read_unime_v2_json(source, json_path, image_root, dataset, image_workers, progress)
    curated = finalize(records, validate_images=False, progress=progress)
    s = curated.summary
    if max_quarantined_fraction is not None and s["quarantined"] > max_quarantined_fraction * s["rows_in"]:
        details = curated.tables["quarantine"]["detail"].to_pylist()[:3]
        raise ValueError(f"{json_path}: {s['quarantined']} of {s['rows_in']} records quarantined, more than "
                         f"max_quarantined_fraction {max_quarantined_fraction:g}; reasons {s['reasons']}, e.g. {details}")
    queries = curated.tables["queries"]
    params = {"format": "unime_v2_json", "file": Path(json_path).name,
              "k": max((len(j.negatives) for j in judged.values()), default=0)}
    table = hard_negative_table(queries, judged, params)
    out_dir = Path(out_dir)
    curated.write(out_dir / source)
    write_parquet(table, out_dir / "hard_negatives.parquet", HARD_NEGATIVES)
    outcomes = Counter(table["outcome"].to_pylist())
    summary = {"strategy": STRATEGY, "params": params, "imported_from": str(json_path), "image_root": str(image_root),
               "curated_dir": str(out_dir / source), "records_in": s["rows_in"], "queries_in": queries.num_rows,
               "queries_with_selections": table.num_rows, "quarantined": s["quarantined"], "reasons": s["reasons"],
               "placeholder_without_image": s["notes"]["unime_v2_json"]["placeholder_without_image"],
               "queries_fallback": outcomes["fallback_random"],
               "fallback_fraction": outcomes["fallback_random"] / table.num_rows if table.num_rows else 0.0,
               "outcomes": dict(sorted(outcomes.items()))}
    write_json(summary, out_dir / "filter_summary.json")
    return summary
