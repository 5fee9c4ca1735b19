"""Value ranges of numeric settings, declared once beside the setting and checked when the workflow is parsed.

A settings dataclass annotates a numeric field with its range::

    lr: Annotated[float, Range(gt=0)]
    alpha: Annotated[float, Range(ge=0, le=1)]

:mod:`uniembed.config_schema` reads the annotation (``typing.get_type_hints(..., include_extras=True)``)
and refuses an out-of-range value naming the full key, before any job runs; the stage that uses the
setting may check it again. ``Range()`` with no bound marks a setting whose every finite value is valid
(a seed is ``Range(ge=0)``: numpy refuses negative seeds). Non-finite numbers are always refused.
"""
from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Range:
    """Bounds of a numeric setting: ``ge``/``gt`` below, ``le``/``lt`` above (None: unbounded)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def violation(self, value: float) -> str | None:
        """Why ``value`` is out of range (None: it is in range)."""
        if isinstance(value, float) and not math.isfinite(value):
            return f"expected a finite number {self.describe()}".rstrip()
        for bound, fails, word in ((self.ge, lambda b: value < b, ">="), (self.gt, lambda b: value <= b, ">"),
                                   (self.le, lambda b: value > b, "<="), (self.lt, lambda b: value >= b, "<")):
            if bound is not None and fails(bound):
                return f"expected a value {self.describe()}"
        return None

    def describe(self) -> str:
        parts = [f"{word} {bound:g}" for bound, word in ((self.ge, ">="), (self.gt, ">"), (self.le, "<="), (self.lt, "<"))
                 if bound is not None]
        return " and ".join(parts)

    def outside(self) -> float:
        """A value just outside the range (for tests that walk every setting); raises when unbounded."""
        for bound, step in ((self.ge, -1), (self.gt, 0), (self.le, 1), (self.lt, 0)):
            if bound is not None:
                return bound + step  # an int for an int bound (int settings), else a float
        raise ValueError("an unbounded range has no value outside it")
