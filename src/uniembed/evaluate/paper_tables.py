"""The papers' own tables from a run's scores, with the published numbers beside ours where they compare.

* U-MARVEL Table 7 (local pool) and Table 14 (global pool): the recall model ("single model") and each
  recall + rerank evaluation ("+Rerank", U-MARVEL⁺), then the paper's U-MARVEL and U-MARVEL⁺ columns;
* U-MARVEL Table 13: local and global averages per training stage (progressive transition -> hard
  negative mining -> distillation), then the paper's;
* UniME-V2 Table 1: MMEB meta-task / IND / OOD / Overall per model, then the paper's UniME-V2 rows;
* UniME-V2 Table 3: embedder, reranker and MMEB overall, ours then the paper's.
* UniME-V2 Table 2: zero-shot Recall@1 per image-text set and direction, then SugarCrepe's Replace / Swap / Add
  accuracy (each the mean over the run's SugarCrepe files of that kind), ours then the paper's UniME-V2 rows.
* U-MARVEL Table 8: zero-shot rows (task, dataset, metric: R@1, CIRCO's MAP@5, SugarCrepe's accuracy over all
  its files), our models as columns, then the paper's U-MARVEL and U-MARVEL⁺ where the run has the dataset.

Published numbers (:mod:`uniembed.evaluate.published`) stand beside ours only where they measure the
same thing: an M-BEIR cell when the paper has that (task, dataset, metric) — dataset names compared
without case — and an average only when every dataset of the paper's average is in the run; MMEB
columns only when the run has as many datasets in that column as the paper (36 overall). Otherwise the
table says so in a line under it rather than setting unrelated numbers side by side (the embedded
default's Shape* datasets are none of M-BEIR's or MMEB's).
"""
from __future__ import annotations

from .metrics import macro_average
from .mmeb import mmeb_summary
from .published import published_for
from .tables import TASK_LABELS, render

#: UniME-V2 Table 1's dataset count per MMEB column.
MMEB_COUNTS = {"Classification": 10, "VQA": 10, "Retrieval": 12, "Grounding": 4, "IND": 20, "OOD": 16, "Overall": 36}
TABLE13_STAGES = ("Progressive transition", "Hard-neg mining", "Distillation")
#: SugarCrepe's files per Table 2 column (Hsieh et al. 2023): a column compares only when the run has all of them.
SUGARCREPE_KINDS = {"Replace": ("replace_obj", "replace_att", "replace_rel"), "Swap": ("swap_obj", "swap_att"),
                    "Add": ("add_obj", "add_att")}
#: Curated zero-shot dataset names (the readers') that the published tables spell otherwise (compared casefolded).
ZEROSHOT_ALIASES = {"coco": "mscoco"}


def _fmt(value) -> str:
    return "–" if value is None else f"{value:.1f}"


def _mbeir(rows: list[dict], tag: str, setting: str) -> dict:
    return {(r["task_id"], r["dataset"], r["metric"]): r["value"] for r in rows
            if r["tag"] == tag and r["benchmark"] == "mbeir" and r["setting"] == setting}


def _casefold(values: dict) -> dict:
    return {(k[0], k[1].casefold(), k[2]) if isinstance(k, tuple) else k: v for k, v in values.items()}


def _average_if_complete(ours: dict, paper: dict):
    """The paper's printed average when all its datasets are among ``ours`` (else None)."""
    keys = [k for k in paper if isinstance(k, tuple)]
    return paper.get("Average") if keys and set(keys) <= set(ours) else None


def mbeir_comparison(rows: list[dict], published: list[dict], setting: str, tags: list[str], fmt: str) -> str:
    """Table 7 (local) / Table 14 (global): our ``tags`` as columns, then U-MARVEL and U-MARVEL⁺ as printed."""
    table = "7" if setting == "local" else "14"
    values = {tag: _mbeir(rows, tag, setting) for tag in tags}
    keys = sorted({k for v in values.values() for k in v})
    papers = {name: _casefold(published_for(published, "mbeir", setting, "U-MARVEL", table=table, row=name))
              for name in ("U-MARVEL", "U-MARVEL⁺")}
    ours = {(t, d.casefold(), m) for t, d, m in keys}
    shown = [name for name, paper in papers.items() if ours & set(paper)]
    body = [[TASK_LABELS[t], d, m, *(_fmt(values[tag].get((t, d, m))) for tag in tags),
             *(_fmt(papers[name].get((t, d.casefold(), m))) for name in shown)] for t, d, m in keys]
    body.append(["Average", "", "", *(_fmt(macro_average(values[tag]) if len(values[tag]) == len(keys) else None)
                                      for tag in tags),
                 *(_fmt(_average_if_complete(ours, papers[name])) for name in shown)])
    header = ["Task", "Dataset", "Metric", *tags, *(f"{name} (paper)" for name in shown)]
    caption = f"U-MARVEL Table {table} layout (M-BEIR {setting} pool): single model and +Rerank"
    return render(header, body, fmt, caption) + _note(shown, f"U-MARVEL Table {table}", "M-BEIR")


def table13(rows: list[dict], published: list[dict], stages: list[str], fmt: str) -> str:
    """U-MARVEL Table 13: one row per training stage (our tag), local and global averages; the paper's stage rows."""
    body, shown = [], False
    for label, tag in zip(TABLE13_STAGES, stages):
        cells = []
        for setting in ("local", "global"):
            ours = _mbeir(rows, tag, setting)
            paper = _casefold(published_for(published, "mbeir", setting, "U-MARVEL", table="13", row=label))
            average = _average_if_complete({(t, d.casefold(), m) for t, d, m in ours}, paper)
            shown |= average is not None
            cells += [_fmt(macro_average(ours) if ours else None), _fmt(average)]
        body.append([label, tag, *cells])
    header = ["Stage", "Model", "Local avg", "Local (paper)", "Global avg", "Global (paper)"]
    return render(header, body, fmt, "U-MARVEL Table 13 layout: training stages") + _note(
        ["U-MARVEL"] if shown else [], "U-MARVEL Table 13", "M-BEIR")


def _mmeb_comparable(summary: dict) -> bool:
    return all(summary.get(c, (None, 0))[1] == n for c, n in MMEB_COUNTS.items())


def mmeb_comparison(rows: list[dict], published: list[dict], tags: list[str], fmt: str) -> str:
    """UniME-V2 Table 1: our models' MMEB columns, then the paper's UniME-V2 rows when the run has MMEB's 36 datasets."""
    summaries = {tag: mmeb_summary([r for r in rows if r["tag"] == tag and r["benchmark"] == "mmeb"]) for tag in tags}
    comparable = bool(summaries) and all(_mmeb_comparable(s) for s in summaries.values())
    body = [[tag, *(_fmt(summaries[tag].get(c, (None, 0))[0]) for c in MMEB_COUNTS)] for tag in tags]
    paper_rows = sorted({r["row"] for r in published if r["paper"] == "UniME-V2" and r["table"] == "1"
                         and r["row"].startswith("UniME-V2")}) if comparable else []
    for name in paper_rows:
        paper = published_for(published, "mmeb", None, "UniME-V2", table="1", row=name)
        body.append([f"{name} (paper)", *(_fmt(paper.get(c)) for c in MMEB_COUNTS)])
    counts = {c: max(s.get(c, (None, 0))[1] for s in summaries.values()) for c in MMEB_COUNTS}
    header = ["Model", *(f"{c} ({counts[c]})" for c in MMEB_COUNTS)]
    return render(header, body, fmt, "UniME-V2 Table 1 layout (MMEB P@1, number of datasets)") + _note(
        paper_rows, "UniME-V2 Table 1", "MMEB")


def reranker_comparison(rows: list[dict], published: list[dict], recall: str, reranked: dict[str, str],
                        fmt: str) -> str:
    """UniME-V2 Table 3: (embedder, reranker, MMEB overall), the recall model alone then with each reranker."""
    summaries = {tag: mmeb_summary([r for r in rows if r["tag"] == tag and r["benchmark"] == "mmeb"])
                 for tag in [recall, *reranked]}
    body = [[recall, "—", _fmt(summaries[recall].get("Overall", (None, 0))[0])]]
    body += [[recall, name, _fmt(summaries[tag].get("Overall", (None, 0))[0])] for tag, name in reranked.items()]
    comparable = all(_mmeb_comparable(s) for s in summaries.values())
    paper_rows = [r for r in published if r["paper"] == "UniME-V2" and r["table"] == "3"] if comparable else []
    body += [[f"{r['row'].split(' | ')[0]} (paper)", r["row"].split(" | ")[1], _fmt(r["value"])] for r in paper_rows]
    return render(["Embedder", "Reranker", "MMEB overall"], body, fmt, "UniME-V2 Table 3 layout: rerankers") + _note(
        paper_rows, "UniME-V2 Table 3", "MMEB")


def _crepe_files(rows: list[dict], kind: str | None) -> dict[str, list[float]]:
    """Per tag, the accuracies of the run's SugarCrepe-format datasets of ``kind`` (``<name>_<kind>_<what>``; None:
    all of them)."""
    out: dict[str, list[float]] = {}
    for r in rows:
        if r["benchmark"] == "zeroshot" and r["metric"] == "accuracy" and (
                kind is None or f"_{kind.lower()}_" in f"{r['dataset']}_"):
            out.setdefault(r["tag"], []).append(r["value"])
    return out


def zeroshot_comparison(rows: list[dict], published: list[dict], tags: list[str], fmt: str) -> str:
    """UniME-V2 Table 2: per image-text set of the run its qi→ct and qt→ci Recall@1, then Replace / Swap / Add."""
    rows = [r for r in rows if r["benchmark"] == "zeroshot"]
    recall = {(r["tag"], r["dataset"], r["task_id"]): r["value"] for r in rows if r["metric"] == "Recall@1"}
    columns = [(d, label, task) for d in dict.fromkeys(k[1] for k in recall)
               for label, task in (("qi->ct", 3), ("qt->ci", 0)) if any(k[1:] == (d, task) for k in recall)]
    crepe = {kind: _crepe_files(rows, kind) for kind in SUGARCREPE_KINDS}
    kinds = [kind for kind in SUGARCREPE_KINDS if crepe[kind]]
    body = [[tag, *(_fmt(recall.get((tag, d, task))) for d, _, task in columns),
             *(_fmt(sum(crepe[k][tag]) / len(crepe[k][tag]) if tag in crepe[k] else None) for k in kinds)]
            for tag in tags]
    datasets = {r["dataset"] for r in rows}
    complete = [k for k in kinds if all(any(d.endswith(f"_{f}") for d in datasets) for f in SUGARCREPE_KINDS[k])]
    paper_rows = sorted({r["row"] for r in published if r["paper"] == "UniME-V2" and r["table"] == "2"
                         and r["row"].startswith("UniME-V2")})
    shown = []
    for name in paper_rows:
        paper = {(t, d.casefold(), m): v for (t, d, m), v in published_for(
            published, "zeroshot", None, "UniME-V2", table="2", row=name).items()}
        cells = [paper.get((label, ZEROSHOT_ALIASES.get(d.casefold(), d.casefold()), "Recall@1"))
                 for d, label, _ in columns]
        cells += [paper.get((k, "sugarcrepe", "accuracy")) if k in complete else None for k in kinds]
        if any(c is not None for c in cells):
            shown.append(name)
            body.append([f"{name} (paper)", *map(_fmt, cells)])
    header = ["Model", *(f"{d} {label.replace('->', '→')} R@1" for d, label, _ in columns),
              *(f"SugarCrepe {k}" for k in kinds)]
    return render(header, body, fmt, "UniME-V2 Table 2 layout (zero-shot Recall@1; SugarCrepe accuracy)") + (
        "\n(paper): UniME-V2 Table 2 as printed (data/published), only in the columns the run has.\n" if shown else
        "\nNo published number of UniME-V2 Table 2 is set beside these: the paper's are on Flickr30K, MSCOCO, "
        "ShareGPT4V, Urban1K and all of SugarCrepe's files of a column, and this run has none of those.\n")


def table8(rows: list[dict], published: list[dict], tags: list[str], fmt: str) -> str:
    """U-MARVEL Table 8: one row per (task, dataset, metric) of the run in the table's metrics, ours then the paper's."""
    rows = [r for r in rows if r["benchmark"] == "zeroshot"]
    labels = {0: "qt->ci", 3: "qi->ct", 7: "(qi,qt)->ci"}
    keys = list(dict.fromkeys((labels[r["task_id"]], r["dataset"], r["metric"]) for r in rows
                              if (r["metric"] == "Recall@1" and r["task_id"] in (0, 3)) or r["metric"] == "mAP@5"))
    values = {(labels.get(r["task_id"]), r["dataset"], r["metric"], r["tag"]): r["value"] for r in rows}
    crepe = _crepe_files(rows, None)   # every SugarCrepe-format file: Table 8's one ITM number is their mean
    body = [[task.replace("->", "→"), d, m, *(_fmt(values.get((task, d, m, tag))) for tag in tags)]
            for task, d, m in keys]
    if crepe:
        body.append(["ITM", "SugarCrepe (all files)", "accuracy",
                     *(_fmt(sum(crepe[t]) / len(crepe[t]) if t in crepe else None) for t in tags)])
    datasets = {r["dataset"] for r in rows}
    complete = all(any(d.endswith(f"_{f}") for d in datasets) for files in SUGARCREPE_KINDS.values() for f in files)
    papers = {}
    for name in ("U-MARVEL", "U-MARVEL⁺"):
        paper = {(t, d.casefold(), m): v for (t, d, m), v in published_for(
            published, "zeroshot", None, "U-MARVEL", table="8", row=name).items()}
        cells = [paper.get((task, ZEROSHOT_ALIASES.get(d.casefold(), d.casefold()), m)) for task, d, m in keys]
        cells += [paper.get(("ITM", "sugarcrepe", "accuracy")) if complete else None] if crepe else []
        if any(c is not None for c in cells):
            papers[name] = cells
    for i, cells in enumerate(zip(*papers.values()) if papers else []):
        body[i] += [_fmt(c) for c in cells]
    header = ["Task", "Dataset", "Metric", *tags, *(f"{n} (paper)" for n in papers)]
    return render(header, body, fmt, "U-MARVEL Table 8 layout (zero-shot)") + (
        "\n(paper): U-MARVEL Table 8 as printed (data/published), only in the rows the run has.\n" if papers else
        "\nNo published number of U-MARVEL Table 8 is set beside these: the paper's are on ShareGPT4V, Urban-1K, "
        "Flickr30K, CIRCO, GeneCIS, Visual Dialog, multi-round FashionIQ, CC-Neg and all of SugarCrepe's files, "
        "and this run has none of those.\n")


def _note(shown, source: str, benchmark: str) -> str:
    if shown:
        return f"\n(paper): {source} as printed (data/published).\n"
    sets = "MMEB's 36 datasets" if benchmark == "MMEB" else "M-BEIR's datasets"
    return (f"\nNo published number of {source} is set beside these: the paper's are on {sets}, "
            f"and this run does not have those (or not all of them).\n")


def paper_tables(rows: list[dict], published: list[dict], *, recall: str | None, reranked: dict[str, str],
                 stages: list[str], fmt: str = "markdown") -> str:
    """Every paper table the run's tags support, in the order of this module's docstring."""
    tags = {r["tag"] for r in rows}
    parts = []
    if recall in tags and any(r["benchmark"] == "mbeir" for r in rows):
        single = [recall, *(t for t in reranked if t in tags)]
        parts += [mbeir_comparison(rows, published, setting, single, fmt) for setting in ("local", "global")]
    if len(stages) == len(TABLE13_STAGES) and set(stages) <= tags:
        parts.append(table13(rows, published, stages, fmt))
    mmeb_tags = list(dict.fromkeys(r["tag"] for r in rows if r["benchmark"] == "mmeb"))
    if mmeb_tags:
        parts.append(mmeb_comparison(rows, published, mmeb_tags, fmt))
    if recall in mmeb_tags and reranked:
        parts.append(reranker_comparison(rows, published, recall, {t: n for t, n in reranked.items() if t in tags}, fmt))
    zeroshot_tags = list(dict.fromkeys(r["tag"] for r in rows if r["benchmark"] == "zeroshot"))
    if zeroshot_tags:
        parts.append(zeroshot_comparison(rows, published, zeroshot_tags, fmt))
        parts.append(table8(rows, published, zeroshot_tags, fmt))
    return "\n".join(parts)
