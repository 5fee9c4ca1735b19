"""MIEB Table 2's layout (Xiao et al. 2025): one row per model, one column per task category (its short names,
in its order), the mean over tasks. Light on purpose (no model code): the tables stage renders it."""
from __future__ import annotations

import numpy as np

#: MIEB Table 2's English columns in its order; the synthetic world fills all but document understanding.
CATEGORIES = ("Rtrv.", "Clus.", "ZS.", "LP.", "Cmp.", "VC.", "Doc.", "vSTS (en)")


def mieb_summary(rows: list[dict]) -> dict[str, tuple[float, int]]:
    """Per category present in ``rows`` (one model's): (mean value over its tasks, number of tasks), then
    ``Mean (en)``, the mean over every task (MIEB's Mean is over tasks, not categories)."""
    rows = [r for r in rows if r["benchmark"] == "mieb"]
    out = {}
    for category in CATEGORIES:
        values = [r["value"] for r in rows if r["setting"] == category]
        if values:
            out[category] = (float(np.mean(values)), len(values))
    if rows:
        out["Mean (en)"] = (float(np.mean([r["value"] for r in rows])), len(rows))
    return out
