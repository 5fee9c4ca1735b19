"""What the retrieval-set readers (``zeroshot``, ``longcaption``, ``composed``) share.

A JSON file or a field that is not the format's structure raises ``SourceFormatError`` naming the file, the record
(1-based) and what was expected. Every candidate and query a reader makes from a record is one row of ``rows_in``
and is either appended or quarantined with its reason, so curation's *rows in == kept + quarantined* holds.
"""
from __future__ import annotations

import json
from pathlib import Path

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..paths import RootedPaths
from ..schemas import IMAGE, IMAGE_TEXT, TASK_OF_MODALITIES, TASKS, TEXT
from ..validate import Problem, modality_problem

T2I = TASK_OF_MODALITIES[(TEXT, IMAGE)]            # M-BEIR task 0: text -> image
I2T = TASK_OF_MODALITIES[(IMAGE, TEXT)]            # M-BEIR task 3: image -> text
COMPOSED = TASK_OF_MODALITIES[(IMAGE_TEXT, IMAGE)]  # M-BEIR task 7: (image, text) -> image, as M-BEIR's CIRR/FashionIQ


def load_json(path: Path, expected: str):
    """The parsed JSON of ``path``; an unreadable file or invalid JSON is a SourceFormatError."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceFormatError(path, None, expected, str(exc)) from exc


def load_json_list(path: Path, expected: str) -> list:
    """:func:`load_json` of a file whose top level must be a list."""
    data = load_json(path, expected)
    if not isinstance(data, list):
        raise SourceFormatError(path, None, expected, type(data).__name__)
    return data


def _type_names(kind: type | tuple[type, ...]) -> str:
    return " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))


def field(record, key: str, kind: type | tuple[type, ...], path: Path, number: int, where: str = "",
          items: type | tuple[type, ...] | None = None):
    """``record[key]`` when it is a ``kind`` (a list: of ``items``); else a SourceFormatError naming file and record."""
    expected = f"{where}{key!r} of type {_type_names(kind)}"
    if not isinstance(record, dict):
        raise SourceFormatError(path, number, expected, f"a {type(record).__name__}, not a JSON object")
    if key not in record:
        raise SourceFormatError(path, number, expected, "no such key")
    value = record[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SourceFormatError(path, number, expected, type(value).__name__)
    if items is not None and not all(isinstance(v, items) and not isinstance(v, bool) for v in value):
        raise SourceFormatError(path, number, f"{where}{key!r} to be a list of {_type_names(items)}", repr(value)[:80])
    return value


def add_candidate(records: SourceRecords, modality: str, candidate_id: str, dataset: str, pool: str | None,
                  path: Path, number: int, *, text: str | None = None, original: str | None = None,
                  image: str | None = None, problem: Problem | None = None, lost: str = "") -> bool:
    """One candidate made from record ``number``: counted, then kept, or quarantined (``lost``: what goes with it)."""
    records.rows_in[str(path)] += 1
    problem = problem or modality_problem(modality, text, image)
    if problem:
        records.reject("candidates", candidate_id, path, number, (problem[0], problem[1] + lost))
        return False
    records.candidates.append(candidate_id=candidate_id, source=records.name, dataset=dataset, text=text,
                              original_text=original, image_path=image, modality=modality, source_file=str(path),
                              source_line=number, pool=pool, counted=True)
    return True


def add_image(records: SourceRecords, paths: RootedPaths, relpath: str, candidate_id: str, dataset: str,
              pool: str | None, path: Path, number: int, lost: str = "") -> str | None:
    """An image candidate at ``relpath`` under the image root; its path, or None when quarantined."""
    image, outside = paths.resolve(relpath)
    kept = add_candidate(records, IMAGE, candidate_id, dataset, pool, path, number, image=image, problem=outside,
                         lost=lost)
    return image if kept else None


def add_query(records: SourceRecords, task_id: int, query_id: str, dataset: str, split: str, pool: str | None,
              path: Path, number: int, *, positives: list[str], text: str | None = None,
              original: str | None = None, image: str | None = None, candidate_ids: list[str] = (),
              problem: Problem | None = None) -> bool:
    """One query of M-BEIR task ``task_id`` (its query modality from the task table): counted, kept or quarantined."""
    modality = TASKS[task_id][0]
    records.rows_in[str(path)] += 1
    problem = problem or modality_problem(modality, text, image)
    if problem is None and not positives:
        problem = ("no_positive", "the record names no positive")
    if problem:
        records.reject("queries", query_id, path, number, problem)
        return False
    records.queries.append(
        query_id=query_id, source=records.name, dataset=dataset, task_id=task_id, split=split, instruction=None,
        instruction_options=[], text=text, original_text=original, image_path=image, modality=modality,
        positive_ids=list(positives), negative_ids=[], candidate_ids=list(candidate_ids), pool=pool,
        source_file=str(path), source_line=number)
    return True


def add_image_with_captions(records: SourceRecords, paths: RootedPaths, dataset: str, split: str, path: Path,
                            number: int, image_id: str, relpath: str,
                            captions: list[tuple[str, str | None, str | None]]) -> None:
    """An image and its ``(caption_id, text, original)`` captions as image-text retrieval queries.

    Each caption finds its image among the split's images (t2i, pool ``<dataset>_t2i_<split>``) and the image finds
    any of its captions among the split's captions (i2t, pool ``<dataset>_i2t_<split>``): the protocol of the
    Karpathy-split retrieval sets (Karpathy & Fei-Fei 2015), which the long-caption sets follow with one caption.
    An image that is quarantined takes its captions and queries with it, said in its row.
    """
    t2i_pool, i2t_pool = f"{dataset}_t2i_{split}", f"{dataset}_i2t_{split}"
    image = add_image(records, paths, relpath, image_id, dataset, t2i_pool, path, number,
                      lost=f"; its {len(captions)} captions and both queries are left out")
    if image is None:
        return
    kept = []
    for caption_id, text, original in captions:
        if add_candidate(records, TEXT, caption_id, dataset, i2t_pool, path, number, text=text, original=original):
            kept.append(caption_id)
            add_query(records, T2I, f"{caption_id}:t2i", dataset, split, t2i_pool, path, number,
                      positives=[image_id], text=text, original=original)
    add_query(records, I2T, f"{image_id}:i2t", dataset, split, i2t_pool, path, number, positives=kept, image=image,
              problem=None if kept else ("no_positive", "no usable caption"))
