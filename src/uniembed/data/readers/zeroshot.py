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
often the caption scores higher (the MMEB-style argmax over the query's own candidates). ``path`` is one such file
(dataset ``sugarcrepe_<stem>``) or the release's folder of them (``replace_att.json``, ``swap_obj.json``, ...; every
``*.json`` in name order, one dataset each: the columns of UniME-V2 Table 2).

A file that is not this structure (unreadable JSON, a missing key, a wrong type) is a ``SourceFormatError`` naming
the file, the record (1-based position) and what was expected; a bad value (empty caption, an image outside
``image_root``) is a quarantine row; a missing image file is quarantined by curation's image check.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..paths import RootedPaths
from ..schemas import TEXT
from ..validate import modality_problem
from .retrieval import I2T, T2I, add_image_with_captions, add_query, field, load_json

__all__ = ["I2T", "T2I", "read_karpathy", "read_sugarcrepe"]


def read_karpathy(name: str, path: str | os.PathLike, image_root: str | os.PathLike | None = None,
                  split: str = "test", dataset: str | None = None) -> SourceRecords:
    """The images of ``split`` and their captions as t2i and i2t queries over the split's two pools."""
    path = Path(path)
    data = load_json(path, 'a Karpathy-split JSON object with an "images" list')
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise SourceFormatError(path, None, 'a JSON object with an "images" list', type(data).__name__)
    dataset = dataset or str(data.get("dataset") or name)
    paths = RootedPaths(Path(image_root) if image_root else path.parent)
    records = SourceRecords(name)
    records.datasets.append(dataset=dataset, source=name)
    for number, image in enumerate(data["images"], start=1):
        if field(image, "split", str, path, number) != split:
            continue
        filename = field(image, "filename", str, path, number)
        folder = image.get("filepath") or ""
        image_id = f"{dataset}:image:{field(image, 'imgid', int, path, number)}"
        captions = []
        for sentence in field(image, "sentences", list, path, number):
            raw = field(sentence, "raw", str, path, number, "each sentence's ")
            caption_id = f"{dataset}:caption:{field(sentence, 'sentid', int, path, number, 'each sentence ')}"
            captions.append((caption_id, raw.strip(), raw))
        add_image_with_captions(records, paths, dataset, split, path, number, image_id,
                                os.path.join(folder, filename), captions)
    return records


def read_sugarcrepe(name: str, path: str | os.PathLike, image_root: str | os.PathLike | None = None,
                    dataset: str | None = None) -> SourceRecords:
    """Each entry: an image query whose own candidates are its caption (positive) and its hard negative."""
    path = Path(path)
    files = sorted(path.glob("*.json")) if path.is_dir() else [path]
    if not files:
        raise SourceFormatError(path, None, "a SugarCrepe JSON file or a folder of them", "a folder without *.json")
    records = SourceRecords(name)
    for file in files:
        stem = f"{dataset}_{file.stem}" if dataset and len(files) > 1 else dataset
        _read_sugarcrepe_file(records, file, RootedPaths(Path(image_root) if image_root else file.parent),
                              stem or f"sugarcrepe_{file.stem}")
    return records


def _read_sugarcrepe_file(records: SourceRecords, path: Path, paths: RootedPaths, dataset: str) -> None:
    name = records.name
    data = load_json(path, "a SugarCrepe JSON object of entries")
    if not isinstance(data, dict):
        raise SourceFormatError(path, None, "a JSON object mapping ids to entries", type(data).__name__)
    records.datasets.append(dataset=dataset, source=name)
    for number, (key, entry) in enumerate(data.items(), start=1):
        filename = field(entry, "filename", str, path, number)
        originals = [field(entry, column, str, path, number) for column in ("caption", "negative_caption")]
        texts = [t.strip() for t in originals]
        qid = f"{dataset}:{key}"
        image, outside = paths.resolve(filename)
        problem = outside or next(filter(None, (modality_problem(TEXT, t, None) for t in texts)), None)
        if problem is None and texts[0] == texts[1]:
            problem = ("conflicting_labels", "the caption and its negative are the same text")
        ids = [f"{qid}:positive", f"{qid}:negative"]
        if not add_query(records, I2T, qid, dataset, "test", None, path, number, positives=ids[:1], image=image,
                         candidate_ids=ids, problem=problem):
            continue
        for cid, text, original in zip(ids, texts, originals):
            records.candidates.append(candidate_id=cid, source=name, dataset=dataset, text=text, original_text=original,
                                      image_path=None, modality=TEXT, source_file=str(path), source_line=number,
                                      pool=None, counted=False)
