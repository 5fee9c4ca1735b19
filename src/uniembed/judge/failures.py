"""How many judge pairs failed, by kind, and the ceiling both ``judge`` and ``filter`` enforce.

A dead judge (server down, Yes/No outside the top-K, unreadable images) yields ``failed`` rows,
never scores; UniME-V2's filter then has nothing to select from. Above
``recipe.judge.max_failed_fraction`` the judge stage fails after writing its resumable shards (a
rerun retries the failed rows) and the filter refuses the table, instead of a green pipeline that
trains on empty negatives.
"""
from __future__ import annotations

import re
from collections import Counter

import pyarrow as pa

CONFIG_KEY = "recipe.judge.max_failed_fraction"
DEFAULT_MAX_FAILED_FRACTION = 0.01
_RETRIED = re.compile(r"^gave up after \d+ attempts: ")


class JudgeFailureError(RuntimeError):
    """More judge pairs failed than ``recipe.judge.max_failed_fraction`` allows."""


def error_kind(error: str | None) -> str:
    """A failed row's error kind: ``"HTTP 503"``, ``"ConnectionError"``, ``"Yes/No not in top-20 logprobs"``..."""
    text = _RETRIED.sub("", error or "").strip()
    kind = re.split(r"[:(;]", text, maxsplit=1)[0].strip()
    return kind[:80] or "unknown"


def failure_summary(table: pa.Table) -> dict:
    """``{"pairs", "failed", "fraction", "by_kind"}`` of a ``JUDGE_SCORES`` table (failed = status not "ok")."""
    statuses, errors = table["status"].to_pylist(), table["error"].to_pylist()
    kinds = Counter(error_kind(e) for s, e in zip(statuses, errors) if s != "ok")
    failed = sum(kinds.values())
    return {"pairs": len(statuses), "failed": failed, "fraction": failed / len(statuses) if statuses else 0.0,
            "by_kind": dict(kinds.most_common())}


def check_limit(value) -> float:
    """``recipe.judge.max_failed_fraction`` as a float in [0, 1] (a clear error otherwise)."""
    try:
        limit = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{CONFIG_KEY} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= limit <= 1.0:
        raise ValueError(f"{CONFIG_KEY} must be in [0, 1], got {limit}")
    return limit


def check_failures(table: pa.Table, limit: float, where: str, hint: str = "") -> dict:
    """The failure summary of ``table``; JudgeFailureError naming ``where`` when the fraction exceeds ``limit``."""
    summary = failure_summary(table)
    if summary["fraction"] > limit:
        kinds = ", ".join(f"{kind}: {count}" for kind, count in summary["by_kind"].items())
        raise JudgeFailureError(
            f"{where}: {summary['failed']} of {summary['pairs']} judge pairs failed (fraction "
            f"{summary['fraction']:.4f}), above {CONFIG_KEY} = {limit}; errors by kind: {kinds}."
            + (f" {hint}" if hint else ""))
    return summary
