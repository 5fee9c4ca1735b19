"""Curation: turn what a reader read into the canonical, validated tables (docs/curation.md).

Readers (``uniembed.data.readers``) parse a source, raise on structural errors and quarantine
rows that fail single-record rules. :func:`finalize` applies the rules across records (duplicate
ids, images that must exist and decode, references into the pools), builds the tables and a
summary, and checks the invariant *rows in == kept + quarantined* for every source file.
"""
from __future__ import annotations

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from ..artifacts import write_json, write_parquet
from .images import check_images
from .schemas import ARTIFACTS, CANDIDATES, DATASETS, QUARANTINE, QUERIES
from .tables import TableBuilder
from .validate import duplicate_verdicts, reference_problem

log = logging.getLogger(__name__)

#: Candidate records as read: the artifact columns plus the pool they were read for and whether
#: the record is a row of its own in the source (M-BEIR pool lines) or derived from a query row.
CANDIDATE_READS = CANDIDATES.append(pa.field("pool", pa.string())).append(pa.field("counted", pa.bool_()))


@dataclass
class SourceRecords:
    """What a reader hands to :func:`finalize`."""

    name: str
    queries: TableBuilder = field(default_factory=lambda: TableBuilder(QUERIES))
    candidates: TableBuilder = field(default_factory=lambda: TableBuilder(CANDIDATE_READS))
    datasets: TableBuilder = field(default_factory=lambda: TableBuilder(DATASETS))
    quarantine: TableBuilder = field(default_factory=lambda: TableBuilder(QUARANTINE))
    rows_in: Counter = field(default_factory=Counter)
    notes: dict = field(default_factory=dict)

    def reject(self, table: str, record_id: str | None, path: str, line: int, problem: tuple[str, str]) -> None:
        reason, detail = problem
        self.quarantine.append(source=self.name, table=table, record_id=record_id,
                               source_file=str(path), source_line=line, reason=reason, detail=detail)


@dataclass
class CuratedSource:
    tables: dict[str, pa.Table]
    summary: dict

    def write(self, out_dir: str | Path) -> None:
        out_dir = Path(out_dir)
        for name, table in self.tables.items():
            write_parquet(table, out_dir / f"{name}.parquet", ARTIFACTS[name])
        write_json(self.summary, out_dir / "summary.json")


def _content(cols: dict, i: int, names: tuple[str, ...]) -> tuple:
    return tuple(tuple(v) if isinstance(v, list) else v for v in (cols[n][i] for n in names))


def finalize(records: SourceRecords, *, validate_images: bool = True, image_workers: int = 1,
             progress: bool = True) -> CuratedSource:
    """Apply the cross-record rules and build the curated tables of one source."""
    cand, qry = records.candidates.columns, records.queries.columns
    n_cand, n_qry = len(records.candidates), len(records.queries)
    cand_keep = [True] * n_cand
    bad: dict[str, tuple[str, str]] = {}
    rejected_at_read = _rejected_candidates(records)

    def drop_candidate(i: int, problem: tuple[str, str]) -> None:
        cand_keep[i] = False
        if problem[0] != "exact_duplicate":  # the first occurrence of an exact duplicate stays
            bad.setdefault(cand["candidate_id"][i], problem)
        if cand["counted"][i]:
            records.reject("candidates", cand["candidate_id"][i], cand["source_file"][i], cand["source_line"][i], problem)

    content_c = (_content(cand, i, ("text", "image_path", "modality")) for i in range(n_cand))
    where_c = lambda i: f'{cand["source_file"][i]}:{cand["source_line"][i]}'  # noqa: E731
    for i, verdict in enumerate(duplicate_verdicts(cand["candidate_id"], content_c, cand["pool"], cand["counted"], where_c)):
        if verdict:
            drop_candidate(i, verdict)

    failures: dict[str, tuple[str, str]] = {}
    if validate_images:
        paths = [p for p, k in zip(cand["image_path"], cand_keep) if p and k] + [p for p in qry["image_path"] if p]
        failures = check_images(paths, workers=image_workers, progress=progress)
    for i in range(n_cand):
        if cand_keep[i] and cand["image_path"][i] in failures:
            drop_candidate(i, failures[cand["image_path"][i]])
    # A conflicting id may also have kept no occurrence; everything in `bad` is out.
    cand_keep = [k and cand["candidate_id"][i] not in bad for i, k in enumerate(cand_keep)]

    known: set[str] = set()
    pool_members: dict[str, set[str]] = defaultdict(set)
    for i in range(n_cand):
        if cand_keep[i]:
            known.add(cand["candidate_id"][i])
            if cand["pool"][i] is not None:
                pool_members[cand["pool"][i]].add(cand["candidate_id"][i])

    qry_keep = [True] * n_qry
    content_q = (_content(qry, i, ("text", "image_path", "modality", "task_id", "positive_ids",
                                   "negative_ids", "candidate_ids", "instruction")) for i in range(n_qry))
    where_q = lambda i: f'{qry["source_file"][i]}:{qry["source_line"][i]}'  # noqa: E731
    verdicts = duplicate_verdicts(qry["query_id"], content_q, None, None, where_q)
    for i in range(n_qry):
        problem = verdicts[i]
        if problem is None and qry["image_path"][i] in failures:
            problem = failures[qry["image_path"][i]]
        if problem is None:
            refs = {"positive": qry["positive_ids"][i], "negative": qry["negative_ids"][i],
                    "candidate": qry["candidate_ids"][i]}
            problem = reference_problem(qry["pool"][i], refs, pool_members, known, bad, rejected_at_read)
        if problem is not None:
            qry_keep[i] = False
            records.reject("queries", qry["query_id"][i], qry["source_file"][i], qry["source_line"][i], problem)

    first_kept: dict[str, int] = {}
    for i in range(n_cand):
        if cand_keep[i]:
            first_kept.setdefault(cand["candidate_id"][i], i)
    unique_rows = set(first_kept.values())
    candidates = records.candidates.to_table([i in unique_rows for i in range(n_cand)]).select(CANDIDATES.names)
    pool_rows = sorted({(p, c) for p, members in pool_members.items() for c in members})
    pools = pa.table({"pool": [p for p, _ in pool_rows], "candidate_id": [c for _, c in pool_rows]})
    tables = {
        "queries": records.queries.to_table(qry_keep),
        "candidates": candidates,
        "pools": pools,
        "datasets": records.datasets.to_table(),
        "quarantine": records.quarantine.to_table(),
    }
    kept_rows = Counter(f for f, k in zip(qry["source_file"], qry_keep) if k)
    kept_rows.update(f for f, k, c in zip(cand["source_file"], cand_keep, cand["counted"]) if k and c)
    return CuratedSource(tables, _summary(records, kept_rows, tables))


def _rejected_candidates(records: SourceRecords) -> dict[str, tuple[str, str]]:
    """Candidates the reader quarantined (first reason per id), so a query citing one says why."""
    q = records.quarantine.columns
    rejected: dict[str, tuple[str, str]] = {}
    for table, rid, reason, detail in zip(q["table"], q["record_id"], q["reason"], q["detail"]):
        if table == "candidates" and rid is not None:
            rejected.setdefault(rid, (reason, detail))
    return rejected


def _summary(records: SourceRecords, kept_rows: Counter, tables: dict[str, pa.Table]) -> dict:
    """Counts per file and reason; raises if any row is unaccounted for (in != kept + quarantined)."""
    q = records.quarantine.columns
    by_file: dict[str, Counter] = defaultdict(Counter)
    for f, reason, table in zip(q["source_file"], q["reason"], q["table"]):
        by_file[f][reason] += 1
    files = {}
    for path in sorted(set(records.rows_in) | set(by_file) | set(kept_rows)):
        quarantined = sum(by_file[path].values())
        row = {"rows_in": records.rows_in[path], "kept": kept_rows[path], "quarantined": quarantined,
               "reasons": dict(sorted(by_file[path].items()))}
        if row["rows_in"] != row["kept"] + row["quarantined"]:
            raise AssertionError(f"curation lost rows of {path}: {row}")
        files[path] = row
    reasons = Counter(q["reason"])
    return {
        "source": records.name,
        "rows_in": sum(records.rows_in.values()),
        "kept": sum(kept_rows.values()),
        "quarantined": len(records.quarantine),
        "reasons": dict(sorted(reasons.items())),
        "tables": {name: t.num_rows for name, t in tables.items()},
        "pools": dict(Counter(tables["pools"]["pool"].to_pylist())),
        "files": files,
        "notes": records.notes,
    }
