"""Reader for M-BEIR (UniIR layout).

Layout under ``root`` (TIGER-Lab/M-BEIR)::

    instructions/query_instructions.tsv       query_modality cand_modality dataset_name dataset_id prompt_1..prompt_4
    query/<split>/mbeir_<ds>[_task<id>]_<split>.jsonl
    cand_pool/local/mbeir_<ds>_task<id>[_<split>]_cand_pool.jsonl
    cand_pool/global/mbeir_union[_up]_<split>_cand_pool.jsonl
    qrels/<split>/mbeir_<ds>_task<id>_<split>_qrels.txt   lines "qid 0 did relevance task_id"
    mbeir_images/...                           image paths in records are relative to root

Query record::

    {"qid": "9:12", "query_txt": "A dog on a couch", "query_img_path": null,
     "query_modality": "text", "query_src_content": null,
     "pos_cand_list": ["9:301"], "neg_cand_list": [], "task_id": 0}

Candidate record::

    {"did": "9:301", "txt": null, "img_path": "mbeir_images/mscoco_images/val2014/x.jpg",
     "modality": "image", "src_content": null}

Raises SourceFormatError (file, line, expectation) for a missing field, a wrong type, an
unparsable line or a malformed instruction/qrels file; quarantines records that break a rule
(an image path resolving outside ``root`` is ``path_outside_root``). A query keeps all four
prompts of its task in ``instruction_options`` (UniIR draws one at random each time a query is
used) and one of them, chosen by a seeded hash of its qid, in ``instruction``.
"""
from __future__ import annotations

import os
import zlib
from collections import defaultdict
from pathlib import Path

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..jsonl import check_fields, iter_json_lines
from ..paths import RootedPaths
from ..schemas import TASKS
from ..validate import modality_problem, normalize_modality, task_problem

_NULLABLE_STR = ((str,), True)
QUERY_FIELDS = {
    "qid": ((str,), False),
    "query_txt": _NULLABLE_STR,
    "query_img_path": _NULLABLE_STR,
    "query_modality": ((str,), False),
    "query_src_content": ((str, dict), True),
    "pos_cand_list": ((list,), False),
    "neg_cand_list": ((list,), False),
    "task_id": ((int,), False),
}
CANDIDATE_FIELDS = {
    "did": ((str,), False),
    "txt": _NULLABLE_STR,
    "img_path": _NULLABLE_STR,
    "modality": ((str,), False),
    "src_content": ((str, dict), True),
}
INSTRUCTION_COLUMNS = ["query_modality", "cand_modality", "dataset_name", "dataset_id",
                       "prompt_1", "prompt_2", "prompt_3", "prompt_4"]


def read_instructions(path: Path) -> tuple[dict[tuple[int, str, str], list[str]], dict[int, str]]:
    """Parse ``query_instructions.tsv`` into prompts per (dataset_id, query, cand modality) and names.

    Plain tab-separated text, one record per line, no quoting: a prompt keeps every character it
    has (a leading quotation mark, an unbalanced quote), and a tab or a line break always ends a
    field. A line may omit trailing empty prompt fields; more fields than the header is an error.
    """
    if not path.is_file():
        raise SourceFormatError(path, None, "the M-BEIR instruction file (instructions/query_instructions.tsv)", "no such file")
    prompts: dict[tuple[int, str, str], list[str]] = {}
    names: dict[int, str] = {}
    header: list[str] = []
    needed = 0
    with open(path, "rb") as handle:
        for line, raw in enumerate(handle, 1):
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise SourceFormatError(path, line, "UTF-8 text", str(exc)) from None
            if line == 1:
                header = [c.strip() for c in text.removeprefix("\ufeff").split("\t")]
                missing = [c for c in INSTRUCTION_COLUMNS if c not in header]
                if missing:
                    raise SourceFormatError(path, 1, f"a tab-separated header with {INSTRUCTION_COLUMNS}", f"missing {missing}")
                needed = 1 + max(header.index(c) for c in INSTRUCTION_COLUMNS[:4])
                continue
            if not text.strip():
                continue
            fields = text.split("\t")
            if not needed <= len(fields) <= len(header):
                raise SourceFormatError(path, line, f"{needed} to {len(header)} tab-separated fields (header {header})",
                                        f"{len(fields)} fields in {text[:80]!r}")
            row = dict(zip(header, fields))
            try:
                dataset_id = int(row["dataset_id"])
            except ValueError:
                raise SourceFormatError(path, line, "an integer dataset_id", repr(row["dataset_id"])) from None
            texts = [row[f"prompt_{k}"].strip() for k in range(1, 5) if row.get(f"prompt_{k}", "").strip()]
            if not texts:
                raise SourceFormatError(path, line, "at least one non-empty prompt")
            prompts[(dataset_id, row["query_modality"].strip(), row["cand_modality"].strip())] = texts
            names[dataset_id] = row["dataset_name"].strip()
    if not header:
        raise SourceFormatError(path, 1, f"a tab-separated header with {INSTRUCTION_COLUMNS}", "an empty file")
    return prompts, names


def read_qrels(path: Path) -> dict[str, set[str]]:
    """Relevant dids per qid from a qrels file (``qid <ignored> did relevance task_id``)."""
    relevant: dict[str, set[str]] = defaultdict(set)
    with open(path) as handle:
        for line, raw in enumerate(handle, 1):
            parts = raw.split()
            if not parts:
                continue
            if len(parts) < 4 or not parts[3].lstrip("-").isdigit():
                raise SourceFormatError(path, line, "'qid 0 did relevance task_id' (integer relevance)", raw.strip()[:80])
            if int(parts[3]) > 0:
                relevant[parts[0]].add(parts[2])
    return relevant


def pool_name(path: Path) -> str:
    """``mbeir_cirr_task7_cand_pool.jsonl`` -> ``cirr_task7``; ``mbeir_union_test_cand_pool`` -> ``union_test``."""
    stem = path.name.removesuffix(".jsonl").removesuffix("_cand_pool")
    return stem.removeprefix("mbeir_")


def _query_pool(query_file: Path, split: str, pools: set[str]) -> str | None:
    """The local pool a query file is evaluated against, else the split's global pool."""
    stem = query_file.name.removesuffix(".jsonl").removeprefix("mbeir_").removesuffix(f"_{split}")
    for name in (f"{stem}_{split}", stem):
        if name in pools and "_task" in name:
            return name
    return next((p for p in sorted(pools) if p.startswith("union") and p.endswith(f"_{split}")), None)


def _dataset_id(record_id: str) -> int | None:
    head, _, tail = record_id.partition(":")
    return int(head) if head.isdigit() and tail else None


def _choose(prompts: list[str], qid: str, seed: int) -> str:
    return prompts[zlib.crc32(f"{seed}:{qid}".encode()) % len(prompts)]


def read_mbeir(name: str, root: str | os.PathLike, splits: list[str] = ("train", "test"),
               instruction_seed: int = 0) -> SourceRecords:
    """Read the queries of ``splits``, all candidate pools they use, qrels and instructions."""
    root = Path(root)
    records = SourceRecords(name)
    paths = RootedPaths(root)
    prompts, names = read_instructions(root / "instructions" / "query_instructions.tsv")
    pool_files = sorted((root / "cand_pool" / "local").glob("*.jsonl"))
    pool_files += [p for p in sorted((root / "cand_pool" / "global").glob("*.jsonl"))
                   if any(pool_name(p).endswith(f"_{s}") for s in splits)]
    for path in pool_files:
        _read_pool(records, paths, path, pool_name(path), names)
    pools = {pool_name(p) for p in pool_files}
    for split in splits:
        query_files = sorted((root / "query" / split).glob("*.jsonl"))
        if not query_files:
            raise SourceFormatError(root / "query" / split, None, f"query jsonl files for split {split!r}", "none")
        qrels: dict[str, set[str]] = defaultdict(set)
        for path in sorted((root / "qrels" / split).glob("*.txt")):
            for qid, dids in read_qrels(path).items():
                qrels[qid] |= dids
        seen = set()
        for path in query_files:
            seen |= _read_queries(records, paths, path, split, _query_pool(path, split, pools), prompts, names, qrels, instruction_seed)
        records.notes[f"qrels_{split}_qids_without_query"] = len(set(qrels) - seen)
    for dataset_id, dataset in sorted(names.items()):
        records.datasets.append(dataset=dataset, source=name)
    return records


def _read_pool(records: SourceRecords, paths: RootedPaths, path: Path, pool: str, names: dict[int, str]) -> None:
    for line, obj in iter_json_lines(path):
        check_fields(obj, CANDIDATE_FIELDS, path, line)
        records.rows_in[str(path)] += 1
        did, text = obj["did"], (obj["txt"] or "").strip() or None
        image, problem = paths.resolve(obj["img_path"]) if obj["img_path"] else (None, None)
        modality = normalize_modality(obj["modality"])
        problem = problem or modality_problem(modality, text, image)
        if problem is None and _dataset_id(did) is None:
            problem = ("malformed_id", f"did {did!r}; expected '<dataset_id>:<n>'")
        if problem:
            records.reject("candidates", did, path, line, problem)
            continue
        records.candidates.append(candidate_id=did, source=records.name, dataset=names.get(_dataset_id(did)),
                                  text=text, original_text=obj["txt"], image_path=image, modality=modality,
                                  source_file=str(path), source_line=line, pool=pool, counted=True)


def _read_queries(records, paths: RootedPaths, path: Path, split: str, pool: str | None, prompts, names, qrels, seed) -> set[str]:
    seen = set()
    for line, obj in iter_json_lines(path):
        for name in ("pos_cand_list", "neg_cand_list"):  # the dataset card shows entries as {"did": ...}
            if isinstance(obj.get(name), list):
                obj[name] = [e["did"] if isinstance(e, dict) and "did" in e else e for e in obj[name]]
        check_fields(obj, QUERY_FIELDS, path, line)
        records.rows_in[str(path)] += 1
        qid, modality, task_id = obj["qid"], normalize_modality(obj["query_modality"]), obj["task_id"]
        seen.add(qid)
        text = (obj["query_txt"] or "").strip() or None
        image, outside = paths.resolve(obj["query_img_path"]) if obj["query_img_path"] else (None, None)
        dataset_id = _dataset_id(qid)
        problem = outside or task_problem(task_id, modality) or modality_problem(modality, text, image)
        if problem is None and dataset_id is None:
            problem = ("malformed_id", f"qid {qid!r}; expected '<dataset_id>:<n>'")
        if problem is None and not obj["pos_cand_list"]:
            problem = ("no_positive", "pos_cand_list is empty")
        if problem is None and qid in qrels and qrels[qid] != set(obj["pos_cand_list"]):
            problem = ("qrels_disagree", f"qrels {sorted(qrels[qid])} vs pos_cand_list {obj['pos_cand_list']}")
        options = prompts.get((dataset_id, *TASKS[task_id])) if problem is None else None
        if problem is None and options is None:
            problem = ("missing_instruction", f"no prompt for dataset {dataset_id} and task {TASKS[task_id]}")
        if problem:
            records.reject("queries", qid, path, line, problem)
            continue
        records.queries.append(
            query_id=qid, source=records.name, dataset=names[dataset_id], task_id=task_id, split=split,
            instruction=_choose(options, qid, seed), instruction_options=options, text=text,
            original_text=obj["query_txt"], image_path=image, modality=modality,
            positive_ids=obj["pos_cand_list"], negative_ids=obj["neg_cand_list"], candidate_ids=[],
            pool=pool, source_file=str(path), source_line=line)
    return seen
