"""What judge quality buys: UniME-V2 Table 4's rows against the judge's ROC-AUC (a study with ``judge_aucs``).

UniME-V2 (§3.2, "Hard Negative Sampling" and eq. 2-4) trains on an MLLM judge's filtered hard negatives and soft
scores; no paper says how good the judge must be before they pay. The study trains the judged rows ("hard
negatives", "hard negatives + soft scores") on the negatives of simulated judges of known ROC-AUC
(:mod:`uniembed.judge.simulated`) and of the run's own judge, per seed, beside the in-batch baseline (no hard
negatives, which no judge touches). Per judge level it reports the judge's measured ROC-AUC, the filter's removal
precision / recall against the world's truth and its random-fallback share, and each row's headline metrics
(mean ± sd over seeds, sample sd). A row *beats* another at a level when its mean exceeds the other's by more
than twice the larger of the two sds.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

from .ablation import METRICS, mean_sd
from .tables import render

REAL = "real"   # the run's own judge (its quality key in ``--stage quality``)
QUALITY = (("roc_auc", "judge_quality.json", "ROC-AUC"), ("removal_precision", "judge_quality.json", "removal precision"),
           ("removal_recall", "judge_quality.json", "removal recall"), ("fallback_fraction", "filter_summary.json", "fallback"))


def read_quality(dirs: Mapping[str, Sequence[str]]) -> dict[str, dict[str, list[float]]]:
    """``{level: {measure: [value per seed]}}`` from each filter directory's judge_quality.json and filter_summary.json
    (a measure a file lacks, e.g. precision when nothing was removed, is left out of that level)."""
    out: dict[str, dict[str, list[float]]] = {}
    for level, paths in dirs.items():
        measures: dict[str, list[float]] = {}
        for path in paths:
            files = {name: json.loads((Path(path) / name).read_text()) for name in {f for _, f, _ in QUALITY}}
            for key, name, _ in QUALITY:
                if files[name].get(key) is not None:
                    measures.setdefault(key, []).append(float(files[name][key]))
        out[level] = measures
    return out


def beats(a: Sequence[float], b: Sequence[float]) -> bool:
    """Mean of ``a`` above mean of ``b`` by more than 2 x the larger sd (sample sd over seeds); never with fewer
    than two seeds on either side (no spread to read the difference against)."""
    if len(a) < 2 or len(b) < 2:
        return False
    (ma, sa), (mb, sb) = mean_sd(list(a)), mean_sd(list(b))
    return ma - mb > 2 * max(sa, sb)


def levels_in_order(quality: Mapping[str, Mapping[str, list[float]]]) -> list[str]:
    return sorted((lv for lv in quality if lv != REAL), key=float) + ([REAL] if REAL in quality else [])


def first_wins(values, quality, names: Mapping[str, Mapping[str, str]], judged: Sequence[str],
               baseline: str | None) -> dict[str, dict[str, str | None]]:
    """Per metric: the lowest simulated AUC at which the soft-score row (``judged[-1]``) beats the hard-negative row
    (``judged[0]``) and the baseline beyond 2 sd (None: at no level). ``names[level][variant]`` is the evaluated
    name of a judged row at a level (uniembed.train.settings.judged_variant; the run's judge: the plain variant)."""
    soft, hard = judged[-1], judged[0]
    out = {}
    for metric in METRICS:
        found = {"hard negatives": None, "baseline": None}
        for level in levels_in_order(quality):
            if level == REAL:
                continue
            mine = values.get(names[level][soft], {}).get(metric)
            if not mine:
                continue
            others = {"hard negatives": values.get(names[level][hard], {}).get(metric),
                      "baseline": values.get(baseline, {}).get(metric) if baseline else None}
            for name, other in others.items():
                if other and found[name] is None and beats(mine, other):
                    found[name] = level
        out[metric] = found
    return out


def judge_study_table(values, quality, names: Mapping[str, Mapping[str, str]], judged: Sequence[str],
                      baseline: str | None, fmt: str = "markdown", caption: str = "") -> str:
    """One row per judge level (simulated AUCs ascending, then the run's judge) and the baseline: the judge's and
    the filter's measures, then each judged row's headline metrics, mean ± sd over seeds."""
    metrics = [m for m in METRICS if any(m in v for v in values.values())]
    cell = lambda xs: "–" if not xs else "{:.2f} ± {:.2f}".format(*mean_sd(xs))  # noqa: E731
    score = lambda xs: "–" if not xs else "{:.1f} ± {:.1f}".format(*mean_sd(xs))  # noqa: E731
    header = ["Judge", *(label for _, _, label in QUALITY), *(f"{v}: {m}" for v in judged for m in metrics)]
    body = []
    for level in levels_in_order(quality):
        name = "run's judge" if level == REAL else f"simulated {float(level):g}"
        body.append([name, *(cell(quality[level].get(key, [])) for key, _, _ in QUALITY),
                     *(score(values.get(names[level][v], {}).get(m, [])) for v in judged for m in metrics)])
    if baseline:
        body.append([f"{baseline} (no judge)", *("–" for _ in QUALITY),
                     *(score(values.get(baseline, {}).get(m, [])) for _ in judged for m in metrics)])
    return render(header, body, fmt, caption)


def wins_markdown(wins: Mapping[str, Mapping[str, str | None]], soft: str) -> str:
    lines = [f"Lowest simulated judge ROC-AUC at which `{soft}` beats each row by more than 2 sd:", ""]
    for metric, found in wins.items():
        said = ", ".join(f"{name}: {level if level is not None else 'at no level'}" for name, level in found.items())
        lines.append(f"- {metric}: {said}")
    return "\n".join(lines) + "\n"
