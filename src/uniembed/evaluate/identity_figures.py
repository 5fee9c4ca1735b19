"""Figures of the identity study (VisME supplement): the t-SNE of identity clusters (Figure 7) with a cluster-quality
number beside each panel, and recall against the candidate-pool size (Table 7 as a plot)."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .figures import _save  # noqa: E402


def cluster_quality(embeddings: np.ndarray, labels: Sequence[str], seed: int = 0) -> dict[str, float]:
    """Silhouette of the identities (cosine) and NMI of k-means (one cluster per identity) against them."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score, silhouette_score

    clusters = KMeans(n_clusters=len(set(labels)), n_init=10, random_state=seed).fit_predict(embeddings)
    return {"silhouette": float(silhouette_score(embeddings, labels, metric="cosine")),
            "nmi": float(normalized_mutual_info_score(labels, clusters))}


def tsne_figure(embeddings: Mapping[str, np.ndarray], labels: Sequence[str], path: str | Path,
                seed: int = 0) -> dict[str, dict[str, float]]:
    """One t-SNE panel per model (``embeddings``: model -> rows aligned with ``labels``), coloured by identity, marker by
    look-alike group; returns each model's :func:`cluster_quality`."""
    from sklearn.manifold import TSNE

    identities = sorted(set(labels))
    groups = sorted({label.rsplit("-", 1)[0] for label in labels})
    colour = {name: plt.cm.tab20(i % 20) for i, name in enumerate(identities)}
    marker = {g: "osD^v<>ph*"[i % 10] for i, g in enumerate(groups)}
    fig, axes = plt.subplots(1, len(embeddings), figsize=(4.2 * len(embeddings), 4.2), squeeze=False)
    quality = {}
    for ax, (model, x) in zip(axes[0], embeddings.items()):
        quality[model] = cluster_quality(x, labels, seed)
        points = TSNE(n_components=2, perplexity=min(30, len(labels) - 1), init="pca", random_state=seed,
                      metric="cosine").fit_transform(x)
        for name in identities:
            rows = [i for i, label in enumerate(labels) if label == name]
            ax.scatter(points[rows, 0], points[rows, 1], s=10, color=colour[name],
                       marker=marker[name.rsplit("-", 1)[0]])
        ax.set_title(f"{model}\nsilhouette {quality[model]['silhouette']:.2f}, k-means NMI {quality[model]['nmi']:.2f}",
                     fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"{len(identities)} identities x {len(labels) // len(identities)} renderings "
                 f"(colour: identity, marker: look-alike group)", fontsize=8)
    _save(fig, path)
    return quality


def pool_scaling_figure(recall: Mapping[str, Mapping[str, Mapping[int, float]]], path: str | Path) -> None:
    """Recall@1 against the pool size (log scale): one panel per task, one line per model."""
    tasks = list(next(iter(recall.values())))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.4 * len(tasks), 3.0), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for model, per_task in recall.items():
            sizes = sorted(per_task[task])
            ax.plot(sizes, [per_task[task][n] for n in sizes], marker="o", label=model, linewidth=1.2)
        ax.set_xscale("log")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("candidates", fontsize=8)
        ax.set_ylabel("Recall@1 (%)", fontsize=8)
    axes[0][0].legend(fontsize=7)
    _save(fig, path)
