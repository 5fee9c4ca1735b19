"""Local mteb tasks of MIEB's categories (Xiao et al. 2025, §3 and Table 1) on the synthetic world, offline.

Each task overrides ``load_data`` to read a :class:`uniembed.evaluate.mieb.world.WorldDraw` from memory instead of
the Hugging Face hub, so ``mteb.evaluate`` runs it with mteb's own evaluators and metrics (nDCG@10 for any2any
retrieval, MIEB's main score). The categories the world can express follow MIEB's task types:

* ``WorldT2IRetrieval`` (Any2AnyRetrieval, t2i): a caption finds its picture among every drawn picture.
* ``WorldShapeLinearProbe`` (ImageClassification): logistic regression on the pictures' embeddings, 16 per shape
  drawn from the train draw, mean accuracy over 5 draws (MIEB §3.1: k-shot linear probing, k = 16).
* ``WorldShapeZeroShot`` (ZeroShotClassification): each picture takes the shape whose label text is nearest.
* ``WorldShapeClustering`` (ImageClustering): mini-batch k-means with one cluster per shape; NMI (MIEB's score).
* ``WorldColorSwap`` / ``WorldPositionSwap`` (Compositionality): a picture's caption against the same caption with
  its colour / position replaced; ``text_acc``, how often the picture is nearer its caption (SugarCrepe's score).
* ``WorldVisualSTS`` (VisualSTS): caption pairs rendered as pictures of text, the cosine of the two pictures'
  embeddings against the gold similarity; Spearman correlation (MIEB's ``cosine_spearman``).
* ``WorldMultipleChoice`` (VisionCentricQA): picture + question, the answer among that attribute's options;
  accuracy (Recall@1 over the query's own options, as mteb's CV-Bench / BLINK tasks score it).
"""
from __future__ import annotations

from datasets import Dataset, DatasetDict
from mteb.abstasks.classification import AbsTaskClassification
from mteb.abstasks.clustering_legacy import AbsTaskClusteringLegacy
from mteb.abstasks.image.image_text_pair_classification import AbsTaskImageTextPairClassification
from mteb.abstasks.retrieval import AbsTaskRetrieval
from mteb.abstasks.sts import AbsTaskSTS
from mteb.abstasks.zeroshot_classification import AbsTaskZeroShotClassification
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata

from ...data.synthetic.world import ATTRIBUTES, VALUES
from .world import (CHOICE_PROMPT, EVAL_DRAW, EXPERIMENTS, LINEAR_PROBE_TRAIN, SHOTS, STS_MAX, T2I_PROMPT,  # noqa: F401
                    WorldDraw, label_texts)

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


class _SwapTask(_DrawTask, AbsTaskImageTextPairClassification):
    """A picture against its caption and the caption with ``attribute`` replaced (one image, two texts)."""
    attribute = "color"
    images_column_names, texts_column_names = ("image",), ("caption", "negative_caption")

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        draw = self.draw
        self.dataset = DatasetDict({"test": Dataset.from_dict({
            "image": list(draw.images), "caption": draw.captions,
            "negative_caption": draw.swapped_captions(self.attribute)})})
        self.data_loaded = True


def _swap_metadata(attribute: str, name: str) -> TaskMetadata:
    return TaskMetadata(
        name=f"UniembedWorld{name}Swap", description=f"A picture's caption against it with the {attribute} replaced.",
        type="Compositionality", category="i2t", modalities=["text", "image"], main_score="text_acc", **_COMMON)


class WorldColorSwap(_SwapTask):
    metadata, attribute = _swap_metadata("color", "Color"), "color"


class WorldPositionSwap(_SwapTask):
    metadata, attribute = _swap_metadata("position", "Position"), "position"


class WorldVisualSTS(_DrawTask, AbsTaskSTS):
    metadata = TaskMetadata(
        name="UniembedWorldVisualSTS", description="Rendered caption pairs scored by how many attributes they share.",
        type="VisualSTS(eng)", category="i2i", modalities=["image"], main_score="cosine_spearman", **_COMMON)
    column_names, min_score, max_score = ("image1", "image2"), 0, STS_MAX

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        first, second, gold = zip(*self.draw.sts_pairs)
        self.dataset = DatasetDict({"test": Dataset.from_dict(
            {"image1": list(first), "image2": list(second), "score": list(gold)})})
        self.data_loaded = True


def choice_id(attribute: str, value: str) -> str:
    return f"choice-{attribute}-{value}"


class WorldMultipleChoice(_DrawTask, AbsTaskRetrieval):
    metadata = TaskMetadata(
        name="UniembedWorldMultipleChoice", description="Picture + question; the answer among the attribute's options.",
        type="VisionCentricQA", category="it2t", modalities=["text", "image"], main_score="accuracy",
        prompt={"query": CHOICE_PROMPT}, **_COMMON)

    def load_data(self, num_proc: int | None = None, **kwargs) -> None:
        draw, questions = self.draw, self.draw.questions()
        options = {a: [(choice_id(a, v), text) for v, text in zip(VALUES[a], label_texts(a))] for a in ATTRIBUTES}
        qids = [f"q-{i}" for i in draw.ids]
        split = RetrievalSplitData(
            queries=Dataset.from_dict({"id": qids, "text": [q for _, q, _ in questions], "image": list(draw.images)}),
            corpus=Dataset.from_dict({"id": [i for a in ATTRIBUTES for i, _ in options[a]],
                                      "text": [t for a in ATTRIBUTES for _, t in options[a]]}),
            relevant_docs={qid: {i: int(t == right) for i, t in options[a]}
                           for qid, (a, _, right) in zip(qids, questions)},
            top_ranked={qid: [i for i, _ in options[a]] for qid, (a, _, _) in zip(qids, questions)})
        self.dataset = {"default": {"test": split}}
        self.data_loaded = True
