"""The MIEB-style evaluation of one model on the synthetic world, without mteb: every local task of
:mod:`uniembed.evaluate.mieb.tasks`, scored by the project's twin evaluators (:mod:`.scores`, which the tests show
equal to mteb's numbers), as rows of the evaluation schema, and their table in MIEB's Table 2 layout (Xiao et al.
2025: one row per model, one column per task category, the mean over tasks).

The world expresses seven of MIEB's categories; document understanding (dense-text pages) and the multilingual
columns have no counterpart in it and stay empty ("–") in the table rather than being averaged as zeros.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from ...embed.embedder import Embedder
from . import scores
from .world import EVAL_DRAW, EXPERIMENTS, LINEAR_PROBE_TRAIN, SHOTS, WorldDraw

@dataclass(frozen=True)
class WorldTask:
    """A local MIEB-style task: its mteb name, MIEB category, main metric and the project's evaluator."""
    name: str
    category: str
    metric: str
    score: Callable[[Embedder, WorldDraw, WorldDraw], float]


WORLD_TASKS = (
    WorldTask("UniembedWorldT2IRetrieval", "Rtrv.", "nDCG@10", lambda e, test, train: scores.t2i_retrieval(e, test)),
    WorldTask("UniembedWorldShapeClustering", "Clus.", "NMI", lambda e, test, train: scores.clustering_nmi(e, test)),
    WorldTask("UniembedWorldShapeZeroShot", "ZS.", "accuracy", lambda e, test, train: scores.zero_shot(e, test)),
    WorldTask("UniembedWorldShapeLinearProbe", "LP.", f"accuracy ({SHOTS}-shot, mean of {EXPERIMENTS})",
              lambda e, test, train: scores.linear_probe(e, train, test, SHOTS, EXPERIMENTS)),
    WorldTask("UniembedWorldColorSwap", "Cmp.", "text accuracy",
              lambda e, test, train: scores.swap_accuracy(e, test, "color")),
    WorldTask("UniembedWorldPositionSwap", "Cmp.", "text accuracy",
              lambda e, test, train: scores.swap_accuracy(e, test, "position")),
    WorldTask("UniembedWorldMultipleChoice", "VC.", "accuracy", lambda e, test, train: scores.multiple_choice(e, test)),
    WorldTask("UniembedWorldVisualSTS", "vSTS (en)", "cosine Spearman",
              lambda e, test, train: scores.visual_sts(e, test)),
)


class EncodeOnce:
    """An :class:`Embedder`'s ``encode`` that embeds each distinct list of items once: the tasks read the same
    draw, so its pictures (and the option texts) would otherwise be embedded by every task again. A list's key is
    its items' texts, instructions, image files and in-memory images (by identity: the draw holds them)."""

    def __init__(self, embedder: Embedder):
        self.embedder, self.done = embedder, {}

    def encode(self, items, batch_size: int = 32):
        key = tuple((i.text, i.instruction, i.image_path, id(i.image) if i.image is not None else None) for i in items)
        if key not in self.done:
            self.done[key] = self.embedder.encode(items, batch_size)
        return self.done[key]


def evaluate_world(embedder: Embedder, tag: str, draw: WorldDraw = EVAL_DRAW,
                   train: WorldDraw = LINEAR_PROBE_TRAIN) -> list[dict]:
    """One row per task in the evaluation schema (:data:`uniembed.evaluate.results.SCORES`): benchmark ``mieb``,
    setting = the MIEB category, value in percent as the papers report (Spearman x 100 as MIEB does)."""
    embedder = EncodeOnce(embedder)
    return [{"tag": tag, "benchmark": "mieb", "setting": task.category, "dataset": task.name, "task_id": None,
             "meta_task": None, "metric": task.metric, "value": 100.0 * task.score(embedder, draw, train),
             "n_queries": draw.n} for task in WORLD_TASKS]
