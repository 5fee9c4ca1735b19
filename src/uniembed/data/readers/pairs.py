"""Readers for the pretraining pair sources of U-MARVEL's progressive transition (§3.1.3).

NLI triplets, SimCSE's ``nli_for_simcse.csv`` (comma-separated, quoted, with a header)::

    sent0,sent1,hard_neg
    "A man is playing a guitar.","A person plays an instrument.","Nobody is playing music."

Each row becomes a text query (``sent0``) whose positive is ``sent1`` and whose negative is
``hard_neg`` (task 1, t->t). ``hard_neg`` may be absent (pairs only).

Image-caption pairs, CC3M-style, as TSV (with a header) or Parquet with columns
``image`` (path relative to ``image_root``, default the file's folder) and ``caption``::

    image	caption
    images/000001.png	a large red circle on the left

Each row becomes an image query whose positive is the caption (task 3, i->t); a bidirectional
loss uses the pair both ways. An image path resolving outside ``image_root`` is quarantined as
``path_outside_root``. Neither source has instructions: ``instruction_options`` is empty.
"""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..paths import RootedPaths
from ..schemas import IMAGE, TEXT
from ..validate import modality_problem
from .rows import iter_rows


def _text_id(dataset: str, text: str) -> str:
    return f"{dataset}:{hashlib.sha1(text.encode()).hexdigest()[:16]}"


def _csv_rows(path: Path, delimiter: str, required: list[str], optional: list[str] = ()):
    try:
        handle = open(path, newline="", encoding="utf-8")
    except OSError as exc:
        raise SourceFormatError(path, None, "a readable delimited text file", str(exc)) from exc
    with handle:
        reader = csv.DictReader(handle, delimiter=delimiter)
        header = reader.fieldnames or []
        if not set(required) <= set(header):
            raise SourceFormatError(path, 1, f"a header with columns {required}", f"{header}")
        for row in reader:
            line = reader.line_num
            if None in row or any(row.get(c) is None for c in required):
                raise SourceFormatError(path, line, f"{len(header)} fields per row", f"{len(row) - (None in row)}")
            yield line, {c: row.get(c) for c in [*required, *optional]}


def read_nli(name: str, path: str | os.PathLike, dataset: str = "nli") -> SourceRecords:
    path = Path(path)
    records = SourceRecords(name)
    records.datasets.append(dataset=dataset, source=name)
    for line, row in _csv_rows(path, ",", ["sent0", "sent1"], ["hard_neg"]):
        records.rows_in[str(path)] += 1
        anchor, positive = (row["sent0"] or "").strip(), (row["sent1"] or "").strip()
        negative = (row["hard_neg"] or "").strip()
        qid = f"{dataset}:{line}"
        texts = [positive] + ([negative] if row["hard_neg"] is not None else [])
        problem = next(filter(None, (modality_problem(TEXT, t, None) for t in [anchor, *texts])), None)
        if problem:
            records.reject("queries", qid, path, line, problem)
            continue
        ids = [_text_id(dataset, t) for t in texts]
        originals = [row["sent1"]] + ([row["hard_neg"]] if row["hard_neg"] is not None else [])
        for text, original, cid in zip(texts, originals, ids):
            records.candidates.append(candidate_id=cid, source=name, dataset=dataset, text=text, original_text=original,
                                      image_path=None, modality=TEXT, source_file=str(path), source_line=line,
                                      pool=None, counted=False)
        records.queries.append(query_id=qid, source=name, dataset=dataset, task_id=1, split="train", instruction=None,
                               instruction_options=[], text=anchor, original_text=row["sent0"], image_path=None,
                               modality=TEXT, positive_ids=ids[:1], negative_ids=ids[1:], candidate_ids=[], pool=None,
                               source_file=str(path), source_line=line)
    return records


def read_captions(name: str, path: str | os.PathLike, image_root: str | os.PathLike | None = None,
                  dataset: str = "captions") -> SourceRecords:
    path = Path(path)
    image_root = Path(image_root) if image_root else path.parent
    paths = RootedPaths(image_root)
    records = SourceRecords(name)
    records.datasets.append(dataset=dataset, source=name)
    if path.suffix == ".parquet":
        rows = iter_rows(path, {"image": ((str,), True), "caption": ((str,), True)})
    else:
        rows = _csv_rows(path, "\t", ["image", "caption"])
    for line, row in rows:
        records.rows_in[str(path)] += 1
        qid = f"{dataset}:{line}"
        caption = (row["caption"] or "").strip()
        image, outside = paths.resolve(row["image"]) if row["image"] else (None, None)
        problem = outside or modality_problem(IMAGE, None, image) or modality_problem(TEXT, caption, None)
        if problem:
            records.reject("queries", qid, path, line, problem)
            continue
        cid = _text_id(dataset, caption)
        records.candidates.append(candidate_id=cid, source=name, dataset=dataset, text=caption,
                                  original_text=row["caption"], image_path=None, modality=TEXT, source_file=str(path),
                                  source_line=line, pool=None, counted=False)
        records.queries.append(query_id=qid, source=name, dataset=dataset, task_id=3, split="train", instruction=None,
                               instruction_options=[], text=None, original_text=None, image_path=image, modality=IMAGE,
                               positive_ids=[cid], negative_ids=[], candidate_ids=[], pool=None,
                               source_file=str(path), source_line=line)
    return records
