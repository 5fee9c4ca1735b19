"""Reader for MMEB (VLM2Vec) train and eval rows, as Parquet or JSON lines.

Train row (``<root>/train/<Dataset>.parquet``)::

    {"qry": "<|image_1|>\\nRepresent the given image for classification", "qry_image_path": "ImageNet/x.jpg",
     "pos_text": "tench", "pos_image_path": "", "neg_text": "", "neg_image_path": ""}

Eval row (``<root>/eval/<Dataset>.parquet``); index 0 of the target lists is the positive::

    {"qry_text": "<|image_1|>\\nRepresent the given image for classification", "qry_img_path": "ImageNet/x.jpg",
     "tgt_text": ["tench", "goldfish", ...], "tgt_img_path": ["", "", ...]}

An empty string means absent; ``<|image_1|>`` marks the image in a text and must appear exactly
when an image path is given (else the row is quarantined as ``image_placeholder_mismatch``). The
placeholder is removed from the canonical text: the prompt builder puts the image before the
text, as VLM2Vec does for Qwen2-VL. Image paths are relative to ``image_root``. An optional
``<root>/eval/datasets.tsv`` (``dataset  meta_task  split``) gives meta-task and IND/OOD group.
Candidate ids are content hashes, so a target repeated across rows is one candidate.
"""
from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..schemas import IMAGE, IMAGE_TEXT, TASK_OF_MODALITIES, TEXT
from ..validate import modality_problem
from .rows import data_files, iter_rows

PLACEHOLDER = "<|image_1|>"
_STR = ((str,), True)
TRAIN_FIELDS = {"qry": _STR, "qry_image_path": _STR, "pos_text": _STR, "pos_image_path": _STR}
TRAIN_OPTIONAL = {"neg_text": _STR, "neg_image_path": _STR}
EVAL_FIELDS = {"qry_text": _STR, "qry_img_path": _STR, "tgt_text": ((list,), False), "tgt_img_path": ((list,), False)}


class _Item:
    """One side of a pair (query or target) in canonical form, or the reason it is invalid."""

    def __init__(self, text: str | None, image: str | None, image_root: Path):
        text, image = text or "", image or ""
        self.problem = None
        if (PLACEHOLDER in text) != bool(image):
            self.problem = ("image_placeholder_mismatch",
                            f"text {'has' if PLACEHOLDER in text else 'lacks'} {PLACEHOLDER} but image path is {image!r}")
        self.text = text.replace(PLACEHOLDER, " ").strip() or None
        self.image = os.path.join(image_root, image) if image else None
        self.modality = IMAGE_TEXT if (self.text and self.image) else IMAGE if self.image else TEXT
        self.problem = self.problem or modality_problem(self.modality, self.text, self.image)

    def candidate_id(self, dataset: str) -> str:
        digest = hashlib.sha1(f"{self.modality}\0{self.text}\0{self.image}".encode()).hexdigest()[:16]
        return f"{dataset}:{digest}"


def read_datasets_tsv(path: Path) -> dict[str, tuple[str, str]]:
    if not path.is_file():
        return {}
    with open(path, newline="") as handle:
        reader = csv.DictReader(handle, delimiter="\t")
        if not {"dataset", "meta_task", "split"} <= set(reader.fieldnames or []):
            raise SourceFormatError(path, 1, "a tab-separated header 'dataset meta_task split'", str(reader.fieldnames))
        return {r["dataset"]: (r["meta_task"], r["split"]) for r in reader}


def read_mmeb(name: str, root: str | os.PathLike, image_root: str | os.PathLike | None = None,
              splits: list[str] = ("train", "eval")) -> SourceRecords:
    root = Path(root)
    image_root = Path(image_root) if image_root else root / "images"
    records = SourceRecords(name)
    meta = read_datasets_tsv(root / "eval" / "datasets.tsv")
    seen_datasets: set[str] = set()
    for split in splits:
        files = data_files(root / split)
        if not files:
            raise SourceFormatError(root / split, None, f"MMEB {split} files (*.parquet or *.jsonl)", "none")
        for path in files:
            dataset = path.stem
            if dataset not in seen_datasets:
                seen_datasets.add(dataset)
                meta_task, group = meta.get(dataset, (None, None))
                records.datasets.append(dataset=dataset, source=name, meta_task=meta_task, eval_group=group)
            reader = _train_rows if split == "train" else _eval_rows
            for row_no, row in iter_rows(path, TRAIN_FIELDS if split == "train" else EVAL_FIELDS,
                                         TRAIN_OPTIONAL if split == "train" else None):
                records.rows_in[str(path)] += 1
                reader(records, path, row_no, row, dataset, split, image_root)
    return records


def _add(records, path, row_no, dataset, split, query: _Item, targets: list[_Item], positives, negatives, per_query: bool):
    qid = f"{dataset}:{split}:{row_no}"
    problem = query.problem
    for role, item in targets:
        if problem is None and item.problem is not None:
            problem = (f"{role}_{item.problem[0]}", item.problem[1])
    ids = [item.candidate_id(dataset) for _, item in targets]
    if problem is None and len(set(ids)) != len(ids):
        problem = ("duplicate_targets", "two targets of the row are identical")
    if problem:
        records.reject("queries", qid, path, row_no, problem)
        return
    for (_, item), cid in zip(targets, ids):
        records.candidates.append(candidate_id=cid, source=records.name, dataset=dataset, text=item.text,
                                  image_path=item.image, modality=item.modality, source_file=str(path),
                                  source_line=row_no, pool=None, counted=False)
    cand_modality = targets[0][1].modality
    records.queries.append(
        query_id=qid, source=records.name, dataset=dataset, task_id=TASK_OF_MODALITIES[(query.modality, cand_modality)],
        split=split, instruction=None, text=query.text, image_path=query.image, modality=query.modality,
        positive_ids=[ids[i] for i in positives], negative_ids=[ids[i] for i in negatives],
        candidate_ids=ids if per_query else [], pool=None, source_file=str(path), source_line=row_no)


def _train_rows(records, path, row_no, row, dataset, split, image_root):
    targets = [("positive", _Item(row["pos_text"], row["pos_image_path"], image_root))]
    if row["neg_text"] or row["neg_image_path"]:
        targets.append(("negative", _Item(row["neg_text"], row["neg_image_path"], image_root)))
    _add(records, path, row_no, dataset, split, _Item(row["qry"], row["qry_image_path"], image_root),
         targets, [0], list(range(1, len(targets))), per_query=False)


def _eval_rows(records, path, row_no, row, dataset, split, image_root):
    texts, images = row["tgt_text"], row["tgt_img_path"]
    if len(texts) != len(images) or not texts:
        raise SourceFormatError(path, row_no, "non-empty tgt_text and tgt_img_path of equal length",
                                f"{len(texts)} texts, {len(images)} images")
    targets = [("positive" if j == 0 else "candidate", _Item(t, i, image_root)) for j, (t, i) in enumerate(zip(texts, images))]
    _add(records, path, row_no, dataset, split, _Item(row["qry_text"], row["qry_img_path"], image_root),
         targets, [0], [], per_query=True)
