"""Paper-layout tables from score rows, as Markdown or LaTeX.

* M-BEIR: U-MARVEL Table 7 (local) / Table 14 (global) / Table 13 (per stage): rows are
  (task, dataset, metric) in M-BEIR task order, one column per model tag, then the average.
* MMEB: UniME-V2 Table 1: one row per model tag; columns are the meta-tasks, IND, OOD and
  Overall, each with its number of datasets.
* Zero-shot: UniME-V2 Table 2: one row per model tag; per image-text set its qi→ct and qt→ci Recall@1,
  then each SugarCrepe-format set's accuracy; then every zero-shot metric per dataset (U-MARVEL Table 8's
  metrics: R@k, CIRCO mAP@k).
* VisME: supplement Table 6: one line per (identity meta-task, metric), one column per model tag, then "All" (the
  mean Recall@1 of the meta-tasks).
* MIEB: Xiao et al. 2025 Table 2: one row per model tag; columns are the task categories (with their
  number of tasks) and the mean over tasks; a category without a task in the run is "–".
"""
from __future__ import annotations

import numpy as np

from .metrics import macro_average
from .mieb.summary import CATEGORIES, mieb_summary
from .mmeb import mmeb_summary

#: U-MARVEL's task notation (q^t -> c^i ...), written in plain text.
TASK_LABELS = {0: "qt→ci", 1: "qt→ct", 2: "qt→(ci,ct)", 3: "qi→ct", 4: "qi→ci", 5: "qi→(ci,ct)",
               6: "(qi,qt)→ct", 7: "(qi,qt)→ci", 8: "(qi,qt)→(ci,ct)"}


def _ordered(values):
    return list(dict.fromkeys(values))


def render(header: list[str], body: list[list[str]], fmt: str = "markdown", caption: str = "") -> str:
    if fmt == "markdown":
        lines = [f"**{caption}**", ""] if caption else []
        lines += ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in body]
        return "\n".join(lines) + "\n"
    if fmt == "latex":
        esc = lambda s: s.replace("→", r"$\rightarrow$").replace("_", r"\_").replace("%", r"\%")  # noqa: E731
        lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(caption)}}}" if caption else "",
                 r"\begin{tabular}{" + "l" * 3 + "r" * (len(header) - 3) + "}", r"\toprule",
                 " & ".join(map(esc, header)) + r" \\", r"\midrule"]
        lines += [" & ".join(map(esc, row)) + r" \\" for row in body]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
        return "\n".join(line for line in lines if line) + "\n"
    raise ValueError(f"fmt must be 'markdown' or 'latex', got {fmt!r}")


def mbeir_table(rows: list[dict], setting: str, fmt: str = "markdown", caption: str = "") -> str:
    rows = [r for r in rows if r["benchmark"] == "mbeir" and r["setting"] == setting]
    if not rows:
        raise ValueError(f"no M-BEIR rows for setting {setting!r}")
    tags = _ordered(r["tag"] for r in rows)
    keys = sorted({(r["task_id"], r["dataset"], r["metric"]) for r in rows})
    value = {(r["task_id"], r["dataset"], r["metric"], r["tag"]): r["value"] for r in rows}
    body = [[TASK_LABELS[t], d, m] + [f"{value[(t, d, m, tag)]:.1f}" if (t, d, m, tag) in value else "–" for tag in tags]
            for t, d, m in keys]
    averages = []
    for tag in tags:
        per = {(t, d, m): value[(t, d, m, tag)] for t, d, m in keys if (t, d, m, tag) in value}
        averages.append(f"{macro_average(per):.1f}" if len(per) == len(keys) else "–")
    body.append(["Average", "", ""] + averages)
    return render(["Task", "Dataset", "Metric", *tags], body, fmt, caption)


def mmeb_table(rows: list[dict], fmt: str = "markdown", caption: str = "") -> str:
    rows = [r for r in rows if r["benchmark"] == "mmeb"]
    if not rows:
        raise ValueError("no MMEB rows")
    return _summary_table(rows, mmeb_summary, None, fmt, caption)


def _summary_table(rows: list[dict], summary, columns: list[str] | None, fmt: str, caption: str) -> str:
    """One line per tag: ``summary(its rows)`` (column -> (value, count)) in ``columns`` (None: as they come), each
    header with its count."""
    tags = _ordered(r["tag"] for r in rows)
    summaries = {tag: summary([r for r in rows if r["tag"] == tag]) for tag in tags}
    columns = columns or _ordered(c for s in summaries.values() for c in s)
    counts = {c: max((s[c][1] for s in summaries.values() if c in s), default=0) for c in columns}
    header = ["Model"] + [f"{c} ({counts[c]})" for c in columns]
    body = [[tag] + [f"{summaries[tag][c][0]:.1f}" if c in summaries[tag] else "–" for c in columns] for tag in tags]
    return render(header, body, fmt, caption)


def _per_row_key(rows: list[dict], key_of, keys: list[tuple], cells_of, header: list[str], fmt: str,
                 caption: str, extra: list[list[str]] = ()) -> str:
    """One line per key (``cells_of(key)`` first), one column per tag of ``rows`` with the row whose ``key_of`` is it;
    then the ``extra`` lines."""
    tags = _ordered(r["tag"] for r in rows)
    value = {(key_of(r), r["tag"]): r["value"] for r in rows}
    body = [[*cells_of(k)] + [f"{value[(k, tag)]:.1f}" if (k, tag) in value else "–" for tag in tags] for k in keys]
    return render([*header, *tags], body + [list(line) for line in extra], fmt, caption)


def mmeb_dataset_table(rows: list[dict], fmt: str = "markdown", caption: str = "") -> str:
    rows = [r for r in rows if r["benchmark"] == "mmeb"]
    key_of = lambda r: (r["meta_task"] or "", r["setting"], r["dataset"])  # noqa: E731
    return _per_row_key(rows, key_of, sorted({key_of(r) for r in rows}), lambda k: (k[0], k[2], k[1]),
                        ["Meta-task", "Dataset", "Split"], fmt, caption)


def mieb_table(rows: list[dict], fmt: str = "markdown", caption: str = "") -> str:
    rows = [r for r in rows if r["benchmark"] == "mieb"]
    if not rows:
        raise ValueError("no MIEB rows")
    return _summary_table(rows, mieb_summary, [*CATEGORIES, "Mean (en)"], fmt, caption)


def mieb_task_table(rows: list[dict], fmt: str = "markdown", caption: str = "") -> str:
    rows = [r for r in rows if r["benchmark"] == "mieb"]
    key_of = lambda r: (r["setting"], r["dataset"], r["metric"])  # noqa: E731
    return _per_row_key(rows, key_of, _ordered(map(key_of, rows)), lambda k: k, ["Category", "Task", "Metric"],
                        fmt, caption)


def zeroshot_table(rows: list[dict], fmt: str = "markdown", caption: str = "") -> str:
    rows = [r for r in rows if r["benchmark"] == "zeroshot"]
    if not rows:
        raise ValueError("no zero-shot rows")
    tags = _ordered(r["tag"] for r in rows)
    value = {(r["tag"], r["dataset"], r["task_id"], r["metric"]): r["value"] for r in rows}
    columns = []   # (header, dataset, task, metric): UniME-V2 Table 2's R@1 per direction, then accuracy
    for dataset in _ordered(r["dataset"] for r in rows):
        for task, label in ((3, "qi→ct"), (0, "qt→ci")):
            if any(k[1:] == (dataset, task, "Recall@1") for k in value):
                columns.append((f"{dataset} {label} R@1", dataset, task, "Recall@1"))
        columns += [(f"{dataset} acc.", dataset, r["task_id"], "accuracy")
                    for r in rows if r["dataset"] == dataset and r["metric"] == "accuracy"][:1]
    body = [[tag] + [f"{value[(tag, d, t, m)]:.1f}" if (tag, d, t, m) in value else "–" for _, d, t, m in columns]
            for tag in tags]
    return render(["Model", *(c[0] for c in columns)], body, fmt, caption)


def zeroshot_metric_table(rows: list[dict], fmt: str = "markdown", caption: str = "") -> str:
    rows = [r for r in rows if r["benchmark"] == "zeroshot"]
    key_of = lambda r: (r["dataset"], r["task_id"], r["metric"])  # noqa: E731
    return _per_row_key(rows, key_of, _ordered(map(key_of, rows)),
                        lambda k: (k[0], TASK_LABELS.get(k[1], "–") if k[1] is not None else "–", k[2]),
                        ["Dataset", "Task", "Metric"], fmt, caption)


#: VisME Table 6's meta-task names, in its order (the world's task names as keys).
VISME_TASKS = {"recognition": "Identity Recognition", "reidentification": "Re-Identification",
               "grounding": "Identity Grounding", "editing": "Identity Editing"}


def visme_table(rows: list[dict], fmt: str = "markdown", caption: str = "") -> str:
    rows = [r for r in rows if r["benchmark"] == "visme"]
    if not rows:
        raise ValueError("no VisME rows")
    key_of = lambda r: (r["setting"], r["metric"])  # noqa: E731
    keys = sorted({key_of(r) for r in rows}, key=lambda k: (list(VISME_TASKS).index(k[0]), k[1]))
    tags = _ordered(r["tag"] for r in rows)
    recall = {(r["tag"], r["setting"]): r["value"] for r in rows if r["metric"] == "Recall@1"}
    all_row = [f"{np.mean([recall[(t, s)] for s in VISME_TASKS]):.1f}"
               if all((t, s) in recall for s in VISME_TASKS) else "–" for t in tags]
    return _per_row_key(rows, key_of, keys, lambda k: (VISME_TASKS[k[0]], k[1]), ["Meta-task", "Metric"], fmt,
                        caption, extra=[["All", "Recall@1, mean of the meta-tasks", *all_row]])


def render_tables(rows: list[dict], fmt: str, title: str) -> str:
    """Every table the rows support: M-BEIR local (Table 7) and global (Table 14) layouts with one
    column per model tag (Table 13 when the tags are stages), then MMEB (UniME-V2 Table 1), the zero-shot sets (UniME-V2 Table 2),
    then MIEB (Table 2)."""
    parts = []
    for setting, layout in (("local", "Table 7/13 layout"), ("global", "Table 14 layout")):
        if any(r["benchmark"] == "mbeir" and r["setting"] == setting for r in rows):
            parts.append(mbeir_table(rows, setting, fmt, f"M-BEIR, {setting} pool, U-MARVEL {layout}: {title}"))
    if any(r["benchmark"] == "mmeb" for r in rows):
        parts.append(mmeb_table(rows, fmt, f"MMEB P@1, UniME-V2 Table 1 layout: {title}"))
        parts.append(mmeb_dataset_table(rows, fmt, f"MMEB P@1 per dataset: {title}"))
    if any(r["benchmark"] == "zeroshot" for r in rows):
        parts.append(zeroshot_table(rows, fmt, f"Zero-shot (never trained on), UniME-V2 Table 2 layout: {title}"))
        parts.append(zeroshot_metric_table(rows, fmt, f"Zero-shot, every metric (U-MARVEL Table 8's): {title}"))
    if any(r["benchmark"] == "visme" for r in rows):
        parts.append(visme_table(rows, fmt, f"Identity meta-tasks, VisME Table 6 layout: {title}"))
    if any(r["benchmark"] == "mieb" for r in rows):
        parts.append(mieb_table(rows, fmt, f"MIEB-style categories on the synthetic world, MIEB Table 2 layout: {title}"))
        parts.append(mieb_task_table(rows, fmt, f"MIEB-style tasks: {title}"))
    return "\n".join(parts)
