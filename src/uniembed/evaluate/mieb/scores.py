"""The project's own evaluators of the MIEB-style categories: the numbers mteb computes for the local tasks
(:mod:`uniembed.evaluate.mieb.tasks`), from :meth:`Embedder.encode` and :mod:`uniembed.evaluate.metrics`, without
mteb (tests show the two agree on the same model and draw).
"""
from __future__ import annotations

import numpy as np

from ...embed.embedder import EmbedItem, Embedder
from ..metrics import ndcg_at_k, rank_rows_by_score
from .world import CHOICE_PROMPT, T2I_PROMPT, WorldDraw, label_texts


def t2i_retrieval(embedder: Embedder, draw: WorldDraw, k: int = 10, batch_size: int = 32) -> float:
    """nDCG@``k`` of caption -> picture retrieval over ``draw`` (mean over captions, in [0, 1] as mteb reports)."""
    queries = embedder.encode([EmbedItem(text, instruction=T2I_PROMPT) for text in draw.captions], batch_size)
    corpus = _pictures(embedder, draw, batch_size)
    ranked = rank_rows_by_score(queries @ corpus.T, draw.ids, k)
    return float(np.mean(ndcg_at_k(ranked, [{i: 1} for i in draw.ids], k)))


def _pictures(embedder: Embedder, draw: WorldDraw, batch_size: int) -> np.ndarray:
    return embedder.encode([EmbedItem(None, image=image) for image in draw.images], batch_size)


def k_shot_indices(labels: list[int], shots: int, experiments: int, seed: int = 42) -> list[list[int]]:
    """The training rows of each linear-probe experiment, by mteb's rule (``AbsTaskClassification._undersample_data``,
    kept from MTEB v1): the index list is shuffled in place by a fresh ``RandomState(seed)`` once per experiment (so
    each experiment shuffles the previous one's order again), then the first ``shots`` rows of each label are kept."""
    order, picked = list(range(len(labels))), []
    for _ in range(experiments):
        np.random.RandomState(seed).shuffle(order)
        counts: dict[int, int] = {}
        rows = []
        for i in order:
            if counts.get(labels[i], 0) < shots:
                rows.append(i)
                counts[labels[i]] = counts.get(labels[i], 0) + 1
        picked.append(rows)
    return picked


def linear_probe(embedder: Embedder, train: WorldDraw, test: WorldDraw, shots: int, experiments: int,
                 seed: int = 42, batch_size: int = 32) -> float:
    """Mean test accuracy of ``experiments`` logistic regressions (scikit-learn, ``max_iter=100``,
    ``random_state=seed``: MIEB's linear probe), each fit on ``shots`` train pictures per shape."""
    from sklearn.linear_model import LogisticRegression

    x_train, x_test = _pictures(embedder, train, batch_size), _pictures(embedder, test, batch_size)
    y_train, y_test = np.asarray(train.labels("shape")), np.asarray(test.labels("shape"))
    accuracies = []
    for rows in k_shot_indices(list(y_train), shots, experiments, seed):
        model = LogisticRegression(max_iter=100, random_state=seed).fit(x_train[rows], y_train[rows])
        accuracies.append(float(np.mean(model.predict(x_test) == y_test)))
    return float(np.mean(accuracies))


def zero_shot(embedder: Embedder, draw: WorldDraw, batch_size: int = 32) -> float:
    """Accuracy of taking, for each picture, the shape whose label text (:func:`label_texts`) is nearest by cosine."""
    labels = embedder.encode([EmbedItem(text) for text in label_texts("shape")], batch_size)
    pictures = _pictures(embedder, draw, batch_size)
    cosine = _unit(pictures) @ _unit(labels).T
    return float(np.mean(cosine.argmax(axis=1) == np.asarray(draw.labels("shape"))))


def clustering_nmi(embedder: Embedder, draw: WorldDraw, seed: int = 42, batch_size: int = 32) -> float:
    """NMI between the shapes and mini-batch k-means clusters of the pictures' embeddings (one cluster per shape
    present; scikit-learn's ``MiniBatchKMeans(batch_size=500, n_init="auto", random_state=seed)`` as mteb's
    image clustering fits it)."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import normalized_mutual_info_score

    labels = draw.labels("shape")
    clusters = MiniBatchKMeans(n_clusters=len(set(labels)), batch_size=500, n_init="auto", random_state=seed)
    return float(normalized_mutual_info_score(labels, clusters.fit(_pictures(embedder, draw, batch_size)).labels_))


def swap_accuracy(embedder: Embedder, draw: WorldDraw, attribute: str, batch_size: int = 32) -> float:
    """Share of pictures whose caption is nearer (cosine) than the caption with ``attribute`` replaced."""
    pictures = _unit(_pictures(embedder, draw, batch_size))
    right, swapped = (_unit(embedder.encode([EmbedItem(text) for text in texts], batch_size))
                      for texts in (draw.captions, draw.swapped_captions(attribute)))
    return float(np.mean(np.sum(pictures * right, axis=1) > np.sum(pictures * swapped, axis=1)))


def visual_sts(embedder: Embedder, draw: WorldDraw, batch_size: int = 32) -> float:
    """Spearman correlation between the gold similarity of the rendered pairs and the cosine of their embeddings."""
    from scipy.stats import spearmanr

    first, second, gold = zip(*draw.sts_pairs)
    a, b = (_unit(embedder.encode([EmbedItem(None, image=image) for image in images], batch_size))
            for images in (first, second))
    return float(spearmanr(gold, np.sum(a * b, axis=1))[0])


def multiple_choice(embedder: Embedder, draw: WorldDraw, batch_size: int = 32) -> float:
    """Accuracy of taking, for each picture + question, the most similar of the asked attribute's options."""
    questions = draw.questions()
    queries = _unit(embedder.encode([EmbedItem(question, instruction=CHOICE_PROMPT, image=image)
                                     for (_, question, _), image in zip(questions, draw.images)], batch_size))
    options = {attribute: label_texts(attribute) for attribute, _, _ in questions}
    embedded = {a: _unit(embedder.encode([EmbedItem(text) for text in texts], batch_size))
                for a, texts in options.items()}
    return float(np.mean([options[a][int(np.argmax(embedded[a] @ query))] == right
                          for query, (a, _, right) in zip(queries, questions)]))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)
