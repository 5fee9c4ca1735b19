"""The reproduced papers' published numbers, from ``data/published/*.csv`` (one file per table).

U-MARVEL (M-BEIR, Recall@5; Recall@10 for Fashion200K, FashionIQ): Table 7 (local pool), Table 13
(per training stage, local and global), Table 14 (global pool). UniME-V2 (MMEB, P@1): Table 1
(meta-tasks, IND, OOD, Overall), Tables 3-6 (MMEB overall of the reranker comparison and ablations).
Zero-shot (benchmark ``zeroshot``): UniME-V2 Table 2 and U-MARVEL Table 8, every model the tables print.
``data/published/README.md`` documents the columns and what was left out. A row breaking the schema
raises :class:`PublishedError` naming the file, the line and the column.
"""
from __future__ import annotations

import csv
import re
from pathlib import Path

COLUMNS = ("paper", "table", "row", "model", "benchmark", "setting", "task_id", "task", "dataset",
           "metric", "value", "note")
SETTINGS = {"mbeir": ("local", "global"),
            "mmeb": ("Classification", "VQA", "Retrieval", "Grounding", "IND", "OOD", "Overall"),
            # zero-shot: the task direction (M-BEIR's notation; task_id 0, 3, 7), dialog and multi-round
            # interleaved queries (no M-BEIR id), image-text matching (SugarCrepe, CC-Neg)
            "zeroshot": ("qt->ci", "qi->ct", "(qi,qt)->ci", "qdialog->ci", "(qi+qt)->ci", "ITM")}
#: M-BEIR task ids as UniIR numbers them (5, qi->(ci,ct), has no dataset).
TASKS = {0: "qt->ci", 1: "qt->ct", 2: "qt->(ci,ct)", 3: "qi->ct", 4: "qi->ci", 5: "qi->(ci,ct)",
         6: "(qi,qt)->ct", 7: "(qi,qt)->ci", 8: "(qi,qt)->(ci,ct)"}
MBEIR_DATASETS = ("VisualNews", "MSCOCO", "Fashion200K", "WebQA", "EDIS", "OVEN", "InfoSeek",
                  "FashionIQ", "CIRR", "NIGHTS")
ZEROSHOT_DATASETS = ("Flickr30K", "MSCOCO", "ShareGPT4V", "Urban1K", "SugarCrepe", "CIRCO", "GeneCIS",
                     "Visual Dialog", "Multi-round FashionIQ", "CC-Neg")
AVERAGE = "Average"  # the metric of a row holding a table's printed average (dataset and task_id empty)
DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "data" / "published"


class PublishedError(ValueError):
    """A published-numbers CSV does not follow the schema."""


def _required(text: str) -> str:
    if not text:
        raise ValueError("must not be empty")
    return text


def _value(text: str) -> float:
    if not 0.0 <= (value := float(text)) <= 100.0:  # float() raises on a non-number
        raise ValueError(f"{value} is not a percentage in [0, 100]")
    return value


def _task_id(text: str) -> int | None:
    if text and (not text.isdigit() or int(text) not in TASKS):
        raise ValueError(f"{text!r} is not an M-BEIR task id 0-8")
    return int(text) if text else None


def _check_row(r: dict) -> tuple[str, str]:
    """The row's cross-column rules; on failure ``(column, message)``, else ``("", "")``."""
    if r["benchmark"] not in SETTINGS:
        return "benchmark", f"unknown benchmark {r['benchmark']!r} (expected one of {sorted(SETTINGS)})"
    if r["setting"] not in SETTINGS[r["benchmark"]]:
        return "setting", f"{r['setting']!r} is not a {r['benchmark']} setting {SETTINGS[r['benchmark']]}"
    if r["benchmark"] == "mmeb":
        if r["task_id"] is not None:
            return "task_id", "an MMEB row has no task_id"
        if r["metric"] != "P@1":
            return "metric", f"an MMEB metric is 'P@1', got {r['metric']!r}"
    elif r["benchmark"] == "zeroshot":
        if r["dataset"] not in ZEROSHOT_DATASETS:
            return "dataset", f"unknown zero-shot dataset {r['dataset']!r}"
        if r["task_id"] is not None and r["task"] != TASKS[r["task_id"]]:
            return "task", f"task {r['task']!r} does not match task_id {r['task_id']} ({TASKS[r['task_id']]!r})"
        if r["task_id"] is None and r["setting"] in TASKS.values():
            return "task_id", f"setting {r['setting']!r} is an M-BEIR task and needs its task_id"
        if r["task_id"] is not None and r["setting"] not in TASKS.values():
            return "task_id", f"setting {r['setting']!r} has no M-BEIR task_id"
        if r["task_id"] is not None and r["setting"] != r["task"]:
            return "setting", f"setting {r['setting']!r} is not the row's task {r['task']!r}"
        if not r["task"]:
            return "task", "a zero-shot row names its task"
        if not re.fullmatch(r"(Recall|mAP)@\d+|accuracy", r["metric"]):
            return "metric", f"{r['metric']!r} is not Recall@k, mAP@k or accuracy"
    elif r["metric"] == AVERAGE:
        if r["dataset"] or r["task_id"] is not None:
            return "dataset", "an M-BEIR Average row has empty dataset and task_id"
    elif r["dataset"] not in MBEIR_DATASETS:
        return "dataset", f"unknown M-BEIR dataset {r['dataset']!r}"
    elif r["task_id"] is None or r["task"] != TASKS[r["task_id"]]:
        return "task", f"task {r['task']!r} does not match task_id {r['task_id']} ({TASKS.get(r['task_id'])!r})"
    elif not re.fullmatch(r"Recall@\d+", r["metric"]):
        return "metric", f"{r['metric']!r} is not Recall@k"
    return "", ""


PARSERS = dict.fromkeys(("paper", "table", "row", "model", "benchmark", "setting"), _required) | {
    "task_id": _task_id, "value": _value}


def read_published_file(path: Path) -> list[dict]:
    rows, seen = [], {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or ())]
            raise PublishedError(f"{path}:1: header must be {','.join(COLUMNS)}"
                                 + (f"; missing column(s) {missing}" if missing else f"; got {reader.fieldnames}"))
        for raw in reader:
            line = reader.line_num
            if None in raw or any(v is None for v in raw.values()):
                raise PublishedError(f"{path}:{line}: expected {len(COLUMNS)} fields")
            row = {}
            for column in COLUMNS:
                try:
                    row[column] = PARSERS.get(column, str)(raw[column].strip())
                except ValueError as e:
                    raise PublishedError(f"{path}:{line}: column {column!r}: {e}") from None
            column, message = _check_row(row)
            if column:
                raise PublishedError(f"{path}:{line}: column {column!r}: {message}")
            key = tuple(row[c] for c in ("paper", "table", "row", "setting", "task_id", "task", "dataset", "metric"))
            if key in seen:
                raise PublishedError(f"{path}:{line}: duplicate of line {seen[key]}")
            seen[key] = line
            rows.append(row | {"file": path.name, "line": line})
    return rows


def read_published(root: str | Path | None = None, files=None) -> list[dict]:
    """Every row of ``files``, or of every ``*.csv`` under ``root`` (default: the repository's ``data/published``)."""
    files = [Path(f) for f in files] if files else sorted(Path(root or DEFAULT_ROOT).glob("*.csv"))
    if not files:
        raise FileNotFoundError(f"no published-numbers CSV under {root or DEFAULT_ROOT}")
    return [row for path in files for row in read_published_file(path)]


def published_models(rows: list[dict], benchmark: str, setting: str | None = None,
                     paper: str | None = None) -> list[tuple[str, str, str, str]]:
    """The ``(paper, table, row, model)`` groups that have numbers for ``benchmark`` (and ``setting``)."""
    return list(dict.fromkeys((r["paper"], r["table"], r["row"], r["model"]) for r in rows
                              if r["benchmark"] == benchmark and setting in (None, r["setting"])
                              and paper in (None, r["paper"])))


def published_for(rows: list[dict], benchmark: str, setting: str | None = None, paper: str | None = None, *,
                  model: str | None = None, table: str | None = None, row: str | None = None) -> dict:
    """One table row's published values: M-BEIR ``{(task_id, dataset, metric): value, "Average": value}``
    (``setting`` 'local' or 'global' required); MMEB ``{meta_task | "IND" | "OOD" | "Overall": value}``;
    zero-shot ``{(task, dataset, metric): value}`` (``task``: 'qt->ci', ..., or SugarCrepe's 'Replace', ...).
    ``model``/``table``/``row`` pick the table row; more than one match raises, naming the candidates."""
    if benchmark not in SETTINGS:
        raise ValueError(f"unknown benchmark {benchmark!r}")
    if benchmark == "mbeir" and setting not in SETTINGS["mbeir"]:
        raise ValueError(f"M-BEIR needs setting 'local' or 'global', got {setting!r}")
    picked = [r for r in rows if r["benchmark"] == benchmark and setting in (None, r["setting"])
              and all(want in (None, r[c]) for c, want in (("paper", paper), ("model", model),
                                                            ("table", table), ("row", row)))]
    groups = published_models(picked, benchmark)
    if len(groups) != 1:
        raise ValueError(f"{len(groups)} published rows match (pass model=, table= or row=): {groups}")
    summary = "metric" if benchmark == "mbeir" else "setting"  # the key of a row without a dataset
    task = "task" if benchmark == "zeroshot" else "task_id"  # SugarCrepe's three rows differ only in task
    return {(r[task], r["dataset"], r["metric"]) if r["dataset"] else r[summary]: r["value"] for r in picked}
