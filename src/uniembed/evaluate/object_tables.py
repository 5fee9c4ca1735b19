"""ObjEmbed's tables (seed 002 §4): local image retrieval, referring-expression grounding and global retrieval per
model, what training buys against the seed spread, and the time per image by proposal count.

Scores are long rows ``{"model", "kind", "task", "metric", "value"}``: ``kind`` is ``objembed`` (an object embedder:
before training, or one seed's trained model) or ``whole-image`` (an ordinary embedder of the run, scored on the
local-retrieval queries only); ``task`` is ``local`` (SORCE-style), ``grounding`` (RefCOCO-style), ``global_short``
or ``global_long``.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from .tables import render

COLUMNS = (("local", "R@1"), ("local", "R@5"), ("local", "R@10"), ("grounding", "accuracy@0.5"),
           ("global_short", "R@1"), ("global_long", "R@1"))
HEADERS = ("Local R@1", "Local R@5", "Local R@10", "REC Acc@0.5", "Global R@1 (short)", "Global R@1 (long)")
CHANCE = ("grounding", "chance")
#: ``tables/objects_scores.parquet``: one score of one model (evaluate_objects)
SCORES_SCHEMA = pa.schema([("model", pa.string()), ("kind", pa.string()), ("task", pa.string()),
                           ("metric", pa.string()), ("value", pa.float64())])
#: ``tables/objects_grounding.parquet``: one referring expression grounded by one model
GROUNDING_SCHEMA = pa.schema([("model", pa.string()), ("expression_id", pa.string()), ("top_iou", pa.float64()),
                              ("hit", pa.bool_()), ("chance", pa.float64())])


def score_rows(model: str, kind: str, results: dict) -> list[dict]:
    """Long rows of one model's results (``{"local": {"R@1": ...}, "grounding": {...}, ...}``)."""
    return [{"model": model, "kind": kind, "task": task, "metric": metric, "value": float(value)}
            for task, metrics in results.items() for metric, value in metrics.items()]


def _value(rows: list[dict], model: str, task: str, metric: str) -> float | None:
    found = [r["value"] for r in rows if r["model"] == model and r["task"] == task and r["metric"] == metric]
    return found[0] if found else None


def objects_table(rows: list[dict], fmt: str = "markdown") -> str:
    """One row per model (whole-image baselines first), ObjEmbed's columns; "–" where a model has no such score."""
    models = list(dict.fromkeys(r["model"] for r in sorted(rows, key=lambda r: r["kind"] != "whole-image")))
    cell = lambda v: "–" if v is None else f"{v:.1f}"  # noqa: E731
    body = [[m, next(r["kind"] for r in rows if r["model"] == m)] + [cell(_value(rows, m, t, k)) for t, k in COLUMNS]
            for m in models]
    chance = next((r["value"] for r in rows if (r["task"], r["metric"]) == CHANCE), None)
    note = f"; grounding chance (a random proposal) {chance:.1f}" if chance is not None else ""
    return render(["Model", "Kind", *HEADERS], body, fmt,
                  f"Object embeddings, ObjEmbed §4 layout: local image retrieval (SORCE-style, one relevant image per "
                  f"query), referring-expression grounding (RefCOCO-style, top proposal at IoU >= 0.5), global "
                  f"retrieval (captions to images){note}")


def training_effect(rows: list[dict], before: str, trained: list[str], baselines: list[str]) -> list[dict]:
    """Per column: the object embedder before training, the trained seeds' mean and sample sd, the gain over before
    and over the best whole-image baseline (local retrieval only), each also in units of the seed sd."""
    out = []
    for task, metric in COLUMNS:
        after = np.array([_value(rows, m, task, metric) for m in trained], dtype=float)
        start = _value(rows, before, task, metric)
        if np.isnan(after).any() or start is None:
            raise ValueError(f"training_effect needs {task} {metric} of {before!r} and of every trained model {trained}")
        sd = float(after.std(ddof=1)) if len(after) > 1 else None
        base = [v for v in (_value(rows, b, task, metric) for b in baselines) if v is not None]
        best = max(base) if base else None
        gain = float(after.mean()) - start
        over = None if best is None else float(after.mean()) - best
        out.append({"task": task, "metric": metric, "before": start, "after_mean": float(after.mean()), "after_sd": sd,
                    "seeds": len(after), "gain": gain, "gain_in_sd": gain / sd if sd else None,
                    "best_whole_image": best, "over_whole_image": over,
                    "over_whole_image_in_sd": over / sd if sd and over is not None else None})
    return out


def training_effect_table(effect: list[dict], before: str, fmt: str = "markdown") -> str:
    n = effect[0]["seeds"]
    num = lambda v, f="{:.1f}": "–" if v is None else f.format(v)  # noqa: E731
    body = [[header, num(e["before"]), num(e["after_mean"]) + ("" if e["after_sd"] is None else f" ± {e['after_sd']:.1f}"),
             num(e["gain"], "{:+.1f}"), num(e["gain_in_sd"], "{:+.1f}"), num(e["best_whole_image"]),
             num(e["over_whole_image"], "{:+.1f}"), num(e["over_whole_image_in_sd"], "{:+.1f}")]
            for header, e in zip(HEADERS, effect)]
    return render(["Score", f"{before} (before)", f"trained ({n} seeds, mean ± sd)", "gain", "gain / sd",
                   "best whole-image", "trained - whole-image", "(in sd)"], body, fmt,
                  "What ObjEmbed training buys: the object embedder before and after, and against the run's best "
                  "whole-image embedder on the same local-retrieval queries")


def timing_table(timing: list[dict], fmt: str = "markdown") -> str:
    """Time per image by proposal count (one forward pass per image), and the whole-image embedder's."""
    body = [[t["what"], str(t["proposals"]) if t["proposals"] is not None else "–", f"{t['ms_per_image']:.1f}",
             f"{t['ratio']:.2f}"] for t in timing]
    return render(["Model", "Proposals", "ms per image", "x (1 proposal)"], body, fmt,
                  "Time per image: every proposal of an image in one forward pass (median of repeats, batch of "
                  "images, this machine)")
