"""Readers of the papers' zero-shot retrieval sets (UniME-V2 Table 2, U-MARVEL Table 8), in their public formats.

**Karpathy split** (Flickr30K ``dataset_flickr30k.json``, MSCOCO ``dataset_coco.json``; Karpathy & Fei-Fei 2015)::

    {"dataset": "coco", "images": [{"filepath": "val2014", "filename": "COCO_val2014_000000391895.jpg",
      "imgid": 0, "split": "test", "sentids": [770337, ...],
      "sentences": [{"raw": "A man with a red helmet on a small moped.", "sentid": 770337, "imgid": 0,
                     "tokens": [...]}, ...]}, ...]}

Flickr30K has no ``filepath``. The images of ``split`` (``test``: MSCOCO 5k, Flickr30K 1k) give two tasks, each over
its own pool: every caption finds its image among the split's images (t2i, task 0) and every image finds one of
its captions among the split's captions (i2t, task 3), scored Recall@1/5/10.

**SugarCrepe** (Hsieh et al. 2023; one JSON per swap / replace / add type, images from COCO val2017)::

    {"0": {"filename": "000000397133.jpg", "caption": "...", "negative_caption": "..."}, ...}

Each entry is an image query with two candidates, the caption (positive) and the hard negative; accuracy is how
often the caption scores higher (the MMEB-style argmax over the query's own candidates).

A file that is not this structure (unreadable JSON, a missing key, a wrong type) is a ``SourceFormatError`` naming
the file, the record (1-based position) and what was expected; a bad value (empty caption, an image outside
``image_root``) is a quarantine row; a missing image file is quarantined by curation's image check.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..paths import RootedPaths
from ..schemas import IMAGE, TEXT
from ..validate import modality_problem

T2I, I2T = 0, 3   # M-BEIR task ids: text -> image, image -> text


def _load_json(path: Path, expected: str):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceFormatError(path, None, expected, str(exc)) from exc


def _field(record: dict, key: str, kind: type, path: Path, number: int, where: str = ""):
    value = record.get(key) if isinstance(record, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise SourceFormatError(path, number, f"{where}{key!r} of type {kind.__name__}",
                                f"{type(value).__name__ if isinstance(record, dict) and key in record else 'no such key'}")
    return value


def read_karpathy(name: str, path: str | os.PathLike, image_root: str | os.PathLike | None = None,
                  split: str = "test", dataset: str | None = None) -> SourceRecords:
    """The images of ``split`` and their captions as t2i and i2t queries over the split's two pools."""
    path = Path(path)
    data = _load_json(path, 'a Karpathy-split JSON object with an "images" list')
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise SourceFormatError(path, None, 'a JSON object with an "images" list', type(data).__name__)
    dataset = dataset or str(data.get("dataset") or name)
    paths = RootedPaths(Path(image_root) if image_root else path.parent)
    records = SourceRecords(name)
    records.datasets.append(dataset=dataset, source=name)
    t2i_pool, i2t_pool = f"{dataset}_t2i_{split}", f"{dataset}_i2t_{split}"
    rows = records.rows_in   # every record made from the file counts: its image, captions and both tasks' queries
    for number, image in enumerate(data["images"], start=1):
        if _field(image, "split", str, path, number) != split:
            continue
        filename = _field(image, "filename", str, path, number)
        folder = image.get("filepath") or ""
        sentences = _field(image, "sentences", list, path, number)
        image_id = f"{dataset}:image:{_field(image, 'imgid', int, path, number)}"
        resolved, outside = paths.resolve(os.path.join(folder, filename))
        problem = outside or modality_problem(IMAGE, None, resolved)
        rows[str(path)] += 1
        if problem:   # its captions and queries go with it, said in the row
            records.reject("candidates", image_id, path, number,
                           (problem[0], f"{problem[1]}; its {len(sentences)} captions and both queries are left out"))
            continue
        records.candidates.append(candidate_id=image_id, source=name, dataset=dataset, text=None, original_text=None,
                                  image_path=resolved, modality=IMAGE, source_file=str(path), source_line=number,
                                  pool=t2i_pool, counted=True)
        captions = []
        for sentence in sentences:
            raw = _field(sentence, "raw", str, path, number, "each sentence's ")
            caption_id = f"{dataset}:caption:{_field(sentence, 'sentid', int, path, number, 'each sentence ')}"
            problem = modality_problem(TEXT, raw.strip(), None)
            rows[str(path)] += 1
            if problem:
                records.reject("candidates", caption_id, path, number, problem)
                continue
            captions.append(caption_id)
            rows[str(path)] += 1   # its t2i query
            records.candidates.append(candidate_id=caption_id, source=name, dataset=dataset, text=raw.strip(),
                                      original_text=raw, image_path=None, modality=TEXT, source_file=str(path),
                                      source_line=number, pool=i2t_pool, counted=True)
            records.queries.append(
                query_id=f"{caption_id}:t2i", source=name, dataset=dataset, task_id=T2I, split=split,
                instruction=None, instruction_options=[], text=raw.strip(), original_text=raw, image_path=None,
                modality=TEXT, positive_ids=[image_id], negative_ids=[], candidate_ids=[], pool=t2i_pool,
                source_file=str(path), source_line=number)
        rows[str(path)] += 1   # the image's i2t query
        if not captions:
            records.reject("queries", f"{image_id}:i2t", path, number, ("no_positive", "no usable caption"))
            continue
        records.queries.append(
            query_id=f"{image_id}:i2t", source=name, dataset=dataset, task_id=I2T, split=split, instruction=None,
            instruction_options=[], text=None, original_text=None, image_path=resolved, modality=IMAGE,
            positive_ids=captions, negative_ids=[], candidate_ids=[], pool=i2t_pool, source_file=str(path),
            source_line=number)
    return records


def read_sugarcrepe(name: str, path: str | os.PathLike, image_root: str | os.PathLike | None = None,
                    dataset: str | None = None) -> SourceRecords:
    """Each entry: an image query whose own candidates are its caption (positive) and its hard negative."""
    path = Path(path)
    data = _load_json(path, "a SugarCrepe JSON object of entries")
    if not isinstance(data, dict):
        raise SourceFormatError(path, None, "a JSON object mapping ids to entries", type(data).__name__)
    dataset = dataset or f"sugarcrepe_{path.stem}"
    paths = RootedPaths(Path(image_root) if image_root else path.parent)
    records = SourceRecords(name)
    records.datasets.append(dataset=dataset, source=name)
    for number, (key, entry) in enumerate(data.items(), start=1):
        records.rows_in[str(path)] += 1
        filename = _field(entry, "filename", str, path, number)
        texts = [_field(entry, field, str, path, number).strip() for field in ("caption", "negative_caption")]
        qid = f"{dataset}:{key}"
        image, outside = paths.resolve(filename)
        problem = outside or modality_problem(IMAGE, None, image) or next(
            filter(None, (modality_problem(TEXT, t, None) for t in texts)), None)
        if problem is None and texts[0] == texts[1]:
            problem = ("conflicting_labels", "the caption and its negative are the same text")
        if problem:
            records.reject("queries", qid, path, number, problem)
            continue
        ids = [f"{qid}:positive", f"{qid}:negative"]
        for cid, text, original in zip(ids, texts, (entry["caption"], entry["negative_caption"])):
            records.candidates.append(candidate_id=cid, source=name, dataset=dataset, text=text, original_text=original,
                                      image_path=None, modality=TEXT, source_file=str(path), source_line=number,
                                      pool=None, counted=False)
        records.queries.append(query_id=qid, source=name, dataset=dataset, task_id=I2T, split="test", instruction=None,
                               instruction_options=[], text=None, original_text=None, image_path=image, modality=IMAGE,
                               positive_ids=ids[:1], negative_ids=[], candidate_ids=ids, pool=None,
                               source_file=str(path), source_line=number)
    return records
