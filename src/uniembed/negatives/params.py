"""The parameters of each hard-negative strategy, with their defaults and ranges: one definition, read by the
filter (:func:`uniembed.negatives.select.resolve_params`) and by the config schema when the workflow is parsed.
Fields without a default are required (the papers publish no value for them)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from ..ranges import Range


@dataclass
class UnimeV2Params:
    """UniME-V2 "Hard Negative Sampling" (:mod:`.unime_v2`)."""

    beta: Annotated[float, Range()]               # alpha = s(q, c+) - beta; not published
    k: Annotated[int, Range(ge=1)] = 8
    interval: Annotated[int, Range(ge=1)] = 5
    minimum: Annotated[int, Range(ge=1)] = 10
    seed: Annotated[int, Range(ge=0)] = 0


@dataclass
class UmarvelParams:
    """U-MARVEL §3.2.2 filtered top-k (:mod:`.umarvel`)."""

    threshold: Annotated[float, Range()]          # not published
    k: Annotated[int, Range(ge=1)]                # not published
    score_column: str = "similarity"


#: strategy -> the dataclass of its parameters
STRATEGY_PARAMS = {"unime_v2": UnimeV2Params, "umarvel": UmarvelParams}
