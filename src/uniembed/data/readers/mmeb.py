"""Reader for MMEB (VLM2Vec) train and eval rows, as Parquet or JSON lines.

Train row (``<root>/train/<Dataset>.parquet``)::

    {"qry": "<|image_1|>\\nRepresent the given image with the following question: What is in the bowl?\\n",
     "qry_image_path": "images/OK-VQA/Train/x.jpg", "pos_text": "soup", "pos_image_path": "",
     "neg_text": "salad", "neg_image_path": ""}

Eval row (``<root>/eval/<Dataset>.parquet``); index 0 of the target lists is the positive::

    {"qry_text": "Find me an everyday image that matches the given caption: A man on a moped.\\n",
     "qry_img_path": "", "tgt_text": ["<|image_1|>\\nRepresent the given image.\\n", ...],
     "tgt_img_path": ["MSCOCO_t2i/Test/x.jpg", ...]}

An empty string means absent; ``<|image_1|>`` marks the image in a text and must appear exactly
when an image path is given (else ``image_placeholder_mismatch``). VLM2Vec writes the task
instruction into the text; it is split off by the documented rule of :mod:`.mmeb_prompts`
(``instruction``; the text as read stays in ``original_text``), and modality and task id are
decided from what remains: an image target whose text is only an instruction is an image.

Image paths are joined verbatim to the split's image folder, as VLM2Vec joins its
``--image_dir`` (``os.path.join(image_dir, path)``): ``image_root`` is one folder or one per split
(``{train: ..., eval: ...}``), default ``<root>/images``; a path resolving outside it is
``path_outside_root``. An optional ``<root>/eval/datasets.tsv`` (``dataset  meta_task  split``)
gives meta-task and IND/OOD group. Candidate ids are content hashes, so a target repeated across
rows is one candidate.
"""
from __future__ import annotations

import csv
import hashlib
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Mapping

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..paths import RootedPaths
from ..schemas import IMAGE, IMAGE_TEXT, TASK_OF_MODALITIES, TEXT
from ..validate import modality_problem
from .mmeb_prompts import PLACEHOLDER, split_instruction
from .rows import data_files, iter_rows

_STR = ((str,), True)
TRAIN_FIELDS = {"qry": _STR, "qry_image_path": _STR, "pos_text": _STR, "pos_image_path": _STR}
TRAIN_OPTIONAL = {"neg_text": _STR, "neg_image_path": _STR}
EVAL_FIELDS = {"qry_text": _STR, "qry_img_path": _STR, "tgt_text": ((list,), False), "tgt_img_path": ((list,), False)}


class _Item:
    """One side of a pair (query or target) in canonical form, or the reason it is invalid."""

    def __init__(self, text: str | None, image: str | None, images: RootedPaths):
        raw, image = text or "", image or ""
        self.original = text or None
        self.problem = None
        if (PLACEHOLDER in raw) != bool(image):
            self.problem = ("image_placeholder_mismatch",
                            f"text {'has' if PLACEHOLDER in raw else 'lacks'} {PLACEHOLDER} but image path is {image!r}")
        self.instruction, self.text, self.rule = split_instruction(raw)
        self.image = None
        if image:
            self.image, outside = images.resolve(image)
            self.problem = self.problem or outside
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


def image_roots(root: Path, image_root, splits) -> dict[str, Path]:
    """The image folder of each split: ``image_root`` (one path or ``{split: path}``), default ``<root>/images``."""
    if image_root is None:
        return {s: root / "images" for s in splits}
    if isinstance(image_root, Mapping):
        missing = [s for s in splits if not image_root.get(s)]
        if missing:
            raise ValueError(f"MMEB image_root {dict(image_root)} names no folder for split(s) {missing}; "
                             f"expected one path or a mapping with keys {list(splits)}")
        return {s: Path(image_root[s]) for s in splits}
    return {s: Path(image_root) for s in splits}


def read_mmeb(name: str, root: str | os.PathLike, image_root: str | os.PathLike | Mapping | None = None,
              splits: list[str] = ("train", "eval")) -> SourceRecords:
    """Read the rows of ``splits``; see the module docstring for the layout and the rules."""
    root = Path(root)
    images = {split: RootedPaths(folder) for split, folder in image_roots(root, image_root, splits).items()}
    records = SourceRecords(name)
    meta = read_datasets_tsv(root / "eval" / "datasets.tsv")
    seen_datasets: set[str] = set()
    rules: dict[str, Counter] = defaultdict(Counter)
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
                query = reader(records, path, row_no, row, dataset, split, images[split])
                rules[dataset][query.rule] += 1
    # How each dataset's query instructions were found (known / colon / none): a "none" is visible here.
    records.notes["mmeb_query_instruction_rule"] = {d: dict(sorted(c.items())) for d, c in sorted(rules.items())}
    return records


def train_pool(dataset: str, split: str) -> str:
    """The pool of a dataset's train queries: all targets of its ``split`` rows."""
    return f"{dataset}:{split}"


def _add(records, path, row_no, dataset, split, query: _Item, targets: list, positives, negatives, per_query: bool):
    qid = f"{dataset}:{split}:{row_no}"
    problem = query.problem
    for j, (role, item) in enumerate(targets):
        if problem is None and item.problem is not None:
            problem = (item.problem[0], f"{role} target {j}: {item.problem[1]}")
    ids = [item.candidate_id(dataset) for _, item in targets]
    if problem is None and len(set(ids)) != len(ids):
        problem = ("duplicate_targets", "two targets of the row are identical")
    if problem:
        records.reject("queries", qid, path, row_no, problem)
        return
    pool = None if per_query else train_pool(dataset, split)
    for (_, item), cid in zip(targets, ids):
        records.candidates.append(candidate_id=cid, source=records.name, dataset=dataset, text=item.text,
                                  original_text=item.original, image_path=item.image, modality=item.modality,
                                  source_file=str(path), source_line=row_no, pool=pool, counted=False)
    cand_modality = targets[0][1].modality
    records.queries.append(
        query_id=qid, source=records.name, dataset=dataset, task_id=TASK_OF_MODALITIES[(query.modality, cand_modality)],
        split=split, instruction=query.instruction, instruction_options=[query.instruction] if query.instruction else [],
        text=query.text, original_text=query.original, image_path=query.image, modality=query.modality,
        positive_ids=[ids[i] for i in positives], negative_ids=[ids[i] for i in negatives],
        candidate_ids=ids if per_query else [], pool=pool, source_file=str(path), source_line=row_no)


def _train_rows(records, path, row_no, row, dataset, split, images: RootedPaths) -> _Item:
    targets = [("positive", _Item(row["pos_text"], row["pos_image_path"], images))]
    if row["neg_text"] or row["neg_image_path"]:
        targets.append(("negative", _Item(row["neg_text"], row["neg_image_path"], images)))
    query = _Item(row["qry"], row["qry_image_path"], images)
    _add(records, path, row_no, dataset, split, query, targets, [0], list(range(1, len(targets))), per_query=False)
    return query


def _eval_rows(records, path, row_no, row, dataset, split, images: RootedPaths) -> _Item:
    texts, paths = row["tgt_text"], row["tgt_img_path"]
    if len(texts) != len(paths) or not texts:
        raise SourceFormatError(path, row_no, "non-empty tgt_text and tgt_img_path of equal length",
                                f"{len(texts)} texts, {len(paths)} images")
    targets = [("positive" if j == 0 else "candidate", _Item(t, i, images)) for j, (t, i) in enumerate(zip(texts, paths))]
    query = _Item(row["qry_text"], row["qry_img_path"], images)
    _add(records, path, row_no, dataset, split, query, targets, [0], [], per_query=True)
    return query
