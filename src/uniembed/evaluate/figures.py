"""Figures of a run for ``snakemake --report``.

* :func:`per_stage_figure` — M-BEIR local / global Recall averages and MMEB overall P@1 of every
  evaluated model, in DAG order (U-MARVEL Table 13 / UniME-V2 Table 1 as bars);
* :func:`temperature_figure` — tau against the training step of every stage that logged it
  (U-MARVEL Finding 4, Table 12: 0.05 -> 0.0206 in stage 1c, then continued);
* :func:`training_curves_figure` — the training loss of every training stage, one panel each;
* :func:`seed_mean_curves_figure` — an ablation study's training loss per variant, averaged over seeds;
* :func:`judge_scores_figure` — the judge's score distributions of true matches and non-matches
  (the synthetic world's truth), with the ROC-AUC;
* :func:`ablation_figure` — an ablation study's headline metrics per variant, mean ± sd over seeds;
* :func:`judge_study_figure` — the judge-quality study: downstream scores against the judge's ROC-AUC.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import math  # noqa: E402

import numpy as np  # noqa: E402

from ..artifacts import atomic_path  # noqa: E402
from .ablation import headline, mean_sd  # noqa: E402

METRICS = ("M-BEIR local", "M-BEIR global", "MMEB overall", "MIEB mean")


def per_stage_figure(rows_by_tag: Mapping[str, Sequence[dict]], path: str | Path) -> dict[str, dict[str, float]]:
    """Grouped bars of the headline metrics per model; returns the plotted values."""
    values = {tag: headline(list(rows)) for tag, rows in rows_by_tag.items()}
    tags = list(values)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(tags) + 2), 3.6))
    width = 0.8 / len(METRICS)
    for i, metric in enumerate(METRICS):
        heights = [values[t].get(metric, float("nan")) for t in tags]
        bars = ax.bar([x + (i - (len(METRICS) - 1) / 2) * width for x in range(len(tags))], heights, width, label=metric)
        ax.bar_label(bars, fmt="%.1f", fontsize=6, padding=1)
    ax.set_xticks(range(len(tags)), tags, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, ncols=3, loc="upper left")
    ax.set_title("Held-out scores per stage")
    _save(fig, path)
    return values


def temperature_figure(histories: Mapping[str, Sequence[dict]], path: str | Path) -> list[str]:
    """tau per step for each stage whose history has a ``temperature``; returns the stages plotted."""
    fig, ax = plt.subplots(figsize=(6.0, 3.2))
    plotted = []
    offset = 0
    for stage, history in histories.items():
        points = [(h["step"], h["temperature"]) for h in history if "temperature" in h]
        if not points:
            continue
        steps, taus = zip(*points)
        ax.plot([offset + s for s in steps], taus, label=stage, linewidth=1.2)
        offset += max(steps)
        plotted.append(stage)
    ax.set_xlabel("training step (stages in order)")
    ax.set_ylabel("temperature τ")
    if plotted:
        ax.legend(fontsize=7)
    ax.set_title("Learnable temperature")
    _save(fig, path)
    return plotted


#: Loss parts drawn beside a stage's loss when its history logs them (UniME-V2 eq. 4's two KL directions, an
#: added InfoNCE term): they say which half of a soft-label loss stalls.
LOSS_PARTS = ("kl_p_q", "kl_q_p", "info_nce")


def training_curves_figure(histories: Mapping[str, Sequence[dict]], path: str | Path) -> list[str]:
    """The ``loss`` per step of each stage with a history (and its LOSS_PARTS, dashed), one panel per stage;
    returns the stages plotted."""
    histories = {stage: [h for h in history if "loss" in h] for stage, history in histories.items()}
    histories = {stage: history for stage, history in histories.items() if history}
    columns = min(3, max(1, len(histories)))
    rows = max(1, math.ceil(len(histories) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 2.4 * rows), squeeze=False)
    for ax, (stage, history) in zip(axes.flat, histories.items()):
        ax.plot([h["step"] for h in history], [h["loss"] for h in history], linewidth=1.0, label="loss")
        for part in LOSS_PARTS:
            points = [(h["step"], h[part]) for h in history if part in h]
            if points:
                ax.plot(*zip(*points), linewidth=0.8, linestyle="--", label=part)
        if any(part in history[0] for part in LOSS_PARTS):
            ax.legend(fontsize=5)
        ax.set_title(stage, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.set_ylabel("loss", fontsize=7)
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(histories):]:
        ax.axis("off")
    fig.suptitle("Training loss per stage", fontsize=9)
    _save(fig, path)
    return list(histories)


def seed_mean_curves_figure(panels: Mapping[str, Mapping[str, Sequence[Sequence[dict]]]], path: str | Path,
                            title: str, key: str = "loss") -> dict[str, dict[str, list]]:
    """One panel per entry of ``panels`` (e.g. an ablation variant), in it one line per label (e.g. a judge's ROC-AUC):
    ``key`` per step averaged over the label's seeds (each a training history); returns the (step, mean) drawn."""
    columns = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.4 * columns, 2.6 * rows), squeeze=False)
    drawn: dict[str, dict[str, list]] = {}
    for ax, (panel, lines) in zip(axes.flat, panels.items()):
        drawn[panel] = {}
        for label, histories in lines.items():
            by_step: dict[int, list[float]] = {}
            for history in histories:
                for h in history:
                    if key in h:
                        by_step.setdefault(h["step"], []).append(h[key])
            if by_step:
                points = [(step, float(np.mean(by_step[step]))) for step in sorted(by_step)]
                ax.plot(*zip(*points), linewidth=0.9, label=label)
                drawn[panel][label] = points
        ax.set_title(panel, fontsize=8)
        ax.set_xlabel("step", fontsize=7)
        ax.set_ylabel(f"{key}, mean over seeds", fontsize=7)
        ax.tick_params(labelsize=6)
        if len(lines) > 1:
            ax.legend(fontsize=5)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    return drawn


def judge_scores_figure(scores: np.ndarray, matches: np.ndarray, roc_auc: float | None, path: str | Path) -> dict:
    """Histograms (as densities) of the judge's P(Yes) for true matches and non-matches; returns their counts."""
    fig, ax = plt.subplots(figsize=(5.0, 3.0))
    bins = np.linspace(0.0, 1.0, 41)
    counts = {}
    for label, selected in (("true matches", matches), ("non-matches", ~matches)):
        counts[label] = int(selected.sum())
        if counts[label]:
            ax.hist(scores[selected], bins=bins, density=True, alpha=0.55, label=f"{label} (n={counts[label]})")
    ax.set_xlabel("judge score P(Yes)")
    ax.set_ylabel("density")
    auc = "n/a" if roc_auc is None else f"{roc_auc:.3f}"
    ax.set_title(f"Judge scores against the truth (ROC-AUC {auc})", fontsize=9)
    ax.legend(fontsize=7)
    _save(fig, path)
    return counts


def ablation_figure(values: Mapping[str, Mapping[str, Sequence[float]]], tables: Mapping[str, Sequence[str]],
                    path: str | Path, title: str) -> dict[str, dict[str, tuple[float, float]]]:
    """One panel per table of the study: grouped bars of each variant's headline metrics, the mean
    with ± sd error bars over seeds; returns ``{variant: {metric: (mean, sd)}}``."""
    variants = list(dict.fromkeys(v for members in tables.values() for v in members))
    metrics = [m for m in METRICS if any(m in values[v] for v in variants)]
    plotted = {v: {m: mean_sd(list(values[v][m])) for m in metrics if m in values[v]} for v in variants}
    fig, axes = plt.subplots(1, len(tables), figsize=(sum(1.1 * len(m) + 2 for m in tables.values()), 3.4),
                             squeeze=False)
    width = 0.8 / max(1, len(metrics))
    for ax, (table, members) in zip(axes.flat, tables.items()):
        for i, metric in enumerate(metrics):
            means = [plotted[v].get(metric, (float("nan"), 0.0))[0] for v in members]
            sds = [plotted[v].get(metric, (0.0, 0.0))[1] for v in members]
            offset = (i - (len(metrics) - 1) / 2) * width
            ax.bar([x + offset for x in range(len(members))], means, width, yerr=sds, capsize=3, label=metric)
        ax.set_xticks(range(len(members)), members, rotation=20, ha="right", fontsize=8)
        ax.set_title(table, fontsize=9)
        ax.set_ylabel("score (%), mean ± sd", fontsize=8)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    return plotted


def judge_study_figure(values, quality, names: Mapping[str, Mapping[str, str]], judged: Sequence[str],
                       baseline: str | None, path: str | Path, title: str) -> dict[str, dict[str, list]]:
    """One panel per headline metric against the judge's measured ROC-AUC: each judged row's mean over seeds across
    the simulated judges with a ± sd band, the baseline's mean and band, the run's judge as a marked point
    (uniembed.evaluate.judge_study); returns ``{variant: {metric: [(auc, mean, sd) per simulated level]}}``."""
    from .judge_study import REAL, levels_in_order

    levels = [lv for lv in levels_in_order(quality) if lv != REAL]
    auc = lambda lv: mean_sd(quality[lv].get("roc_auc") or [float(lv)])[0]  # noqa: E731
    metrics = [m for m in METRICS if any(m in v for v in values.values())]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.6 * len(metrics), 3.2), squeeze=False)
    plotted: dict[str, dict[str, list]] = {v: {} for v in judged}
    for ax, metric in zip(axes.flat, metrics):
        for colour, variant in zip(("tab:blue", "tab:orange", "tab:green", "tab:purple"), judged):
            points = [(auc(lv), *mean_sd(values[names[lv][variant]][metric])) for lv in levels
                      if metric in values.get(names[lv][variant], {})]
            plotted[variant][metric] = points
            if points:
                x, m, sd = map(np.asarray, zip(*points))
                ax.plot(x, m, marker="o", markersize=3, color=colour, label=variant)
                ax.fill_between(x, m - sd, m + sd, color=colour, alpha=0.2)
            real = values.get(names.get(REAL, {}).get(variant, ""), {}).get(metric)
            if real and REAL in quality:
                m, sd = mean_sd(real)
                ax.errorbar([auc(REAL)], [m], yerr=[sd], marker="*", markersize=9, color=colour, capsize=3,
                            linestyle="none", label=f"{variant}, run's judge")
        if baseline and metric in values.get(baseline, {}):
            m, sd = mean_sd(values[baseline][metric])
            ax.axhline(m, color="grey", linestyle="--", linewidth=1, label=f"{baseline} (no judge)")
            ax.axhspan(m - sd, m + sd, color="grey", alpha=0.15)
        ax.set_xlabel("judge ROC-AUC (measured)", fontsize=8)
        ax.set_ylabel(f"{metric} (%), mean ± sd", fontsize=8)
        ax.tick_params(labelsize=7)
    axes.flat[0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    _save(fig, path)
    return plotted


def _save(fig, path) -> None:
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
