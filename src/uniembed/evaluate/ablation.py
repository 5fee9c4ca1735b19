"""Ablation tables: each variant trained and evaluated once per seed, reported as mean ± sd.

UniME-V2 Table 4 (hard-negative mining ✓/✗ × judgment-based training ✓/✗) and Table 6 (number of
hard negatives) report MMEB and retrieval scores; on the embedded default the columns are the
MMEB-style overall P@1 and the M-BEIR-style local and global Recall averages. The sd is the
sample standard deviation over seeds (ddof = 1), so a difference can be read against it.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from .metrics import macro_average
from .mieb.summary import mieb_summary
from .mmeb import mmeb_summary
from .tables import render

METRICS = ("MMEB overall", "M-BEIR local", "M-BEIR global")


def ablation_tag(study: str, variant: str, seed: int) -> str:
    """The evaluation tag of one repetition (parsed back by :func:`parse_tag`)."""
    return f"{study}-{variant}-s{seed}"


def parse_tag(tag: str) -> tuple[str, str, int]:
    study, rest = tag.split("-", 1)
    variant, seed = rest.rsplit("-s", 1)
    return study, variant, int(seed)


def headline(rows: list[dict]) -> dict[str, float]:
    """The headline numbers of one evaluated model's score rows (MIEB's mean over tasks when it has MIEB rows)."""
    out = {}
    mmeb = [r for r in rows if r["benchmark"] == "mmeb"]
    if mmeb:
        out["MMEB overall"] = mmeb_summary(mmeb)["Overall"][0]
    for setting in ("local", "global"):
        per = {(r["task_id"], r["dataset"]): r["value"] for r in rows if r["benchmark"] == "mbeir" and r["setting"] == setting}
        if per:
            out[f"M-BEIR {setting}"] = macro_average(per)
    mieb = mieb_summary(rows)
    if mieb:
        out["MIEB mean"] = mieb["Mean (en)"][0]
    return out


def collect(rows: list[dict]) -> dict[str, dict[str, list[float]]]:
    """``{variant: {metric: [value per seed, seed order]}}`` from the score rows of every repetition."""
    by_tag = defaultdict(list)
    for r in rows:
        by_tag[r["tag"]].append(r)
    values: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for tag, tag_rows in by_tag.items():
        _, variant, seed = parse_tag(tag)
        for metric, value in headline(tag_rows).items():
            values[variant][metric].append((seed, value))
    return {v: {m: [x for _, x in sorted(pairs)] for m, pairs in metrics.items()} for v, metrics in values.items()}


def mean_sd(values: list[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=np.float64)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def ablation_table(variants: list[str], settings: dict[str, dict | None], values: dict[str, dict[str, list[float]]],
                   fmt: str = "markdown", caption: str = "", stages: dict[str, str] | None = None) -> str:
    """Rows = ``variants`` in order. With ``stages`` (variant -> what it is: U-MARVEL Table 13's
    training stages) a ``Stage`` column; otherwise variants with one objective differ by k: a
    ``#Negatives`` column (UniME-V2 Table 6 layout), else ✓/✗ columns for hard negatives and soft
    (judge) scores (Table 4)."""
    if stages is not None:
        header = ["Stage"]
        lead = {v: [stages[v]] for v in variants}
    elif len({settings[v]["objective"]["name"] for v in variants}) == 1:
        header = ["#Negatives"]
        lead = {v: [str(settings[v]["objective"].get("num_negatives", 0))] for v in variants}
    else:
        header = ["Hard negatives", "Soft scores"]
        mark = lambda flag: "✓" if flag else "✗"  # noqa: E731
        lead = {v: [mark(settings[v]["objective"].get("num_negatives", 0) > 0),
                    mark(settings[v]["objective"]["name"] == "soft_label")] for v in variants}
    metrics = [m for m in METRICS if any(m in values.get(v, {}) for v in variants)]
    body = []
    for v in variants:
        cells = []
        for m in metrics:
            seeds = values.get(v, {}).get(m, [])
            cells.append("–" if not seeds else "{:.1f} ± {:.1f}".format(*mean_sd(seeds)))
        body.append([v, *lead[v], *cells])
    return render(["Variant", *header, *metrics], body, fmt, caption)
