"""Figures of a run for ``snakemake --report``: per-stage headline scores and the learnable temperature.

* :func:`per_stage_figure` — M-BEIR local / global Recall averages and MMEB overall P@1 of every
  evaluated model, in DAG order (U-MARVEL Table 13 / UniME-V2 Table 1 as bars);
* :func:`temperature_figure` — tau against the training step of every stage that logged it
  (U-MARVEL Finding 4, Table 12: 0.05 -> 0.0206 in stage 1c, then continued).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..artifacts import atomic_path  # noqa: E402
from .ablation import headline  # noqa: E402

METRICS = ("M-BEIR local", "M-BEIR global", "MMEB overall")


def per_stage_figure(rows_by_tag: Mapping[str, Sequence[dict]], path: str | Path) -> dict[str, dict[str, float]]:
    """Grouped bars of the headline metrics per model; returns the plotted values."""
    values = {tag: headline(list(rows)) for tag, rows in rows_by_tag.items()}
    tags = list(values)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(tags) + 2), 3.6))
    width = 0.8 / len(METRICS)
    for i, metric in enumerate(METRICS):
        heights = [values[t].get(metric, float("nan")) for t in tags]
        bars = ax.bar([x + (i - 1) * width for x in range(len(tags))], heights, width, label=metric)
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


def _save(fig, path) -> None:
    fig.tight_layout()
    with atomic_path(Path(path)) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
