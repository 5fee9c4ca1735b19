"""Local mteb tasks of MIEB's categories (Xiao et al. 2025, §3 and Table 1) on the synthetic world, offline.

Each task overrides ``load_data`` to read a :class:`uniembed.evaluate.mieb.world.WorldDraw` from memory instead of
the Hugging Face hub, so ``mteb.evaluate`` runs it with mteb's own evaluators and metrics (nDCG@10 for any2any
retrieval, MIEB's main score). The categories the world can express follow MIEB's task types:

* ``WorldT2IRetrieval`` (Any2AnyRetrieval, t2i): a caption finds its picture among every drawn picture.
* ``WorldShapeLinearProbe`` (ImageClassification): logistic regression on the pictures' embeddings, 16 per shape
  drawn from the train draw, mean accuracy over 5 draws (MIEB §3.1: k-shot linear probing, k = 16).
* ``WorldShapeZeroShot`` (ZeroShotClassification): each picture takes the shape whose label text is nearest.
* ``WorldShapeClustering`` (ImageClustering): mini-batch k-means with one cluster per shape; NMI (MIEB's score).
"""
from __future__ import annotations

from datasets import Dataset, DatasetDict
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.zeroshot_classification import AbsTaskZeroShotClassification
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata

from .world import T2I_PROMPT, WorldDraw, label_texts

_COMMON = dict(
    reference="https://github.com/embeddings-benchmark/mteb", dataset={"path": "uniembed/synthetic-world",
                                                                      "revision": "local"},
    eval_splits=["test"], eval_langs=["eng-Latn"], date=("2026-01-01", "2026-01-01"), dialect=[], domains=[],
    task_subtypes=[], license="apache-2.0", annotations_creators="derived", sample_creation="created",
    bibtex_citation="")


class WorldT2IRetrieval(AbsTaskRetrieval):
    """Caption -> picture retrieval over a world draw (one relevant picture per caption)."""
    metadata = TaskMetadata(
        name="UniembedWorldT2IRetrieval", description="A shape's caption finds its picture among the draw's.",
        type="Any2AnyRetrieval", category="t2i", modalities=["text", "image"], main_score="ndcg_at_10",
        prompt={"query": T2I_PROMPT}, **_COMMON)

    def __init__(self, draw: WorldDraw = WorldDraw(), **kwargs):
        super().__init__(**kwargs)
        self.draw = draw

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        draw = self.draw
        split = RetrievalSplitData(
            queries=Dataset.from_dict({"id": [f"q-{i}" for i in draw.ids], "text": draw.captions}),
            corpus=Dataset.from_dict({"id": draw.ids, "image": list(draw.images)}),
            relevant_docs={f"q-{i}": {i: 1} for i in draw.ids}, top_ranked=None)
        self.dataset = {"default": {"test": split}}
        self.data_loaded = True


#: MIEB's linear probe: 16 examples per class, mean over 5 experiments (mteb's ``samples_per_label``,
#: ``n_experiments``); the train draw holds more than 16 per shape, so each experiment samples other ones.
SHOTS, EXPERIMENTS = 16, 5
LINEAR_PROBE_TRAIN, EVAL_DRAW = WorldDraw(seed=0, n=192, start=0), WorldDraw(seed=0, n=96, start=192)


class _DrawTask:
    """Holds the draws a task reads; ``load_data`` builds mteb's dataset from them."""

    def __init__(self, draw: WorldDraw = EVAL_DRAW, train: WorldDraw = LINEAR_PROBE_TRAIN, **kwargs):
        super().__init__(**kwargs)
        self.draw, self.train = draw, train


def _pictures(draw: WorldDraw) -> Dataset:
    return Dataset.from_dict({"image": list(draw.images), "label": draw.labels("shape")})


class WorldShapeLinearProbe(_DrawTask, AbsTaskClassification):
    metadata = TaskMetadata(
        name="UniembedWorldShapeLinearProbe", description="The shape of a picture, by logistic regression.",
        type="ImageClassification", category="i2c", modalities=["image"], main_score="accuracy", **_COMMON)
    input_column_name, samples_per_label, n_experiments = "image", SHOTS, EXPERIMENTS

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        self.dataset = DatasetDict({"train": _pictures(self.train), "test": _pictures(self.draw)})
        self.data_loaded = True


class WorldShapeZeroShot(_DrawTask, AbsTaskZeroShotClassification):
    metadata = TaskMetadata(
        name="UniembedWorldShapeZeroShot", description="The shape of a picture, by the nearest label text.",
        type="ZeroShotClassification", category="i2t", modalities=["image", "text"], main_score="accuracy",
        **_COMMON)

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        self.dataset = DatasetDict({"test": _pictures(self.draw)})
        self.data_loaded = True

    def get_candidate_labels(self) -> list[str]:
        return label_texts("shape")


class WorldShapeClustering(_DrawTask, AbsTaskClusteringLegacy):
    metadata = TaskMetadata(
        name="UniembedWorldShapeClustering", description="Pictures clustered by shape.",
        type="ImageClustering", category="i2c", modalities=["image"], main_score="nmi", **_COMMON)
    input_column_name, label_column_name = "image", "label"

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        self.dataset = DatasetDict({"test": _pictures(self.draw)})
        self.data_loaded = True
