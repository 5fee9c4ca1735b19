"""What training for identity buys (VisME): the identity meta-tasks before training (the model it started from) and
after (the identity-trained models, one per seed), with the seed spread the gain must clear."""
from __future__ import annotations

import numpy as np

from .tables import VISME_TASKS, render

TRAINING_METRICS = ("Recall@1", "mAP@10")


def training_effect(rows: list[dict], start: str, trained: list[str], metrics=TRAINING_METRICS) -> list[dict]:
    """Per metric and meta-task (and "all": the mean of the meta-tasks), the value of the model training started from
    and of the models trained for identity (one per seed): their mean, sample standard deviation, the gain and the
    gain in units of that spread."""
    out = []
    for metric in metrics:
        value = {(r["tag"], r["setting"]): r["value"] for r in rows
                 if r["benchmark"] == "visme" and r["metric"] == metric}
        tasks = list(dict.fromkeys(r["setting"] for r in rows if r["benchmark"] == "visme"))
        missing = [(tag, t) for tag in (start, *trained) for t in tasks if (tag, t) not in value]
        if missing or not trained:
            raise ValueError(f"training_effect needs {metric} of {start!r} and of every trained model {trained} on "
                             f"every meta-task; missing {missing}")
        for tag in (start, *trained):
            value[(tag, "all")] = float(np.mean([value[(tag, t)] for t in tasks]))
        for task in (*tasks, "all"):
            after = np.array([value[(tag, task)] for tag in trained])
            sd = float(after.std(ddof=1)) if len(after) > 1 else None    # one seed has no spread
            gain = float(after.mean()) - value[(start, task)]
            out.append({"task": task, "metric": metric, "before": value[(start, task)],
                        "after_mean": float(after.mean()), "after_sd": sd, "seeds": len(after), "gain": gain,
                        "gain_in_sd": gain / sd if sd else None})   # None: no spread to measure it in
    return out


def training_effect_table(effect: list[dict], start: str, fmt: str = "markdown") -> str:
    """Before / after training for identity, per meta-task and metric, with the seed spread of the trained models."""
    n = effect[0]["seeds"]
    spread = lambda e: f" ± {e['after_sd']:.1f}" if e["after_sd"] is not None else ""  # noqa: E731
    in_sd = lambda e: f"{e['gain_in_sd']:+.1f}" if e["gain_in_sd"] is not None else "–"  # noqa: E731
    body = [[VISME_TASKS.get(e["task"], "All (mean of the meta-tasks)"), e["metric"], f"{e['before']:.1f}",
             f"{e['after_mean']:.1f}{spread(e)}", f"{e['gain']:+.1f}", in_sd(e)]
            for e in sorted(effect, key=lambda e: (e["metric"] != "Recall@1", e["metric"]))]
    return render(["Meta-task", "Metric", f"{start} (before)", f"trained for identity ({n} seeds, mean ± sd)", "gain",
                   "gain / sd"], body, fmt, f"Training for identity (VisME): {start} before, the identity-trained "
                  f"models after")
