"""ObjEmbed's evaluation (seed 002 §4): referring-expression grounding, local image retrieval and global retrieval
with an object embedder, and the whole-image embedder on the same local-retrieval queries as the baseline.

* **Grounding** (RefCOCO-style, the released ``eval_grounding``): each proposal of the expression's image scores
  sigmoid(s) * sigmoid(objectness) (eq. 1 and §3.1's IoU token); the expression is grounded when the top proposal
  overlaps its box at IoU >= 0.5 (Accuracy@0.5 = Precision@1). Chance: the mean fraction of an image's proposals
  that overlap the box that much.
* **Local image retrieval** (SORCE / REIRCOCO-style, the released ``eval_retrieval``): an image's score for a query is
  the maximum over its proposals of sigmoid(s) (no objectness factor, as the released code); Recall@1/5/10 with the
  query's own image as the only relevant one, over the local-retrieval file's images (``local_gallery``).
* **Global retrieval**: short captions against the coarse global token, long captions against the detailed one
  (each with the global tokens' scale and bias); Recall@1/5/10 over the captioned images.
* **Whole-image baseline**: an ordinary embedder of the run, the query text (with the world's text-to-image
  instruction) against each gallery image's one embedding, cosine; Recall@1/5/10.

Every image runs through the object embedder once, with all its proposals.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from ..embed.embedder import EmbedItem
from ..embed.objects import ObjectEmbedder
from ..model.object_heads import matching_logits
from ..model.regions import box_iou

GROUNDING_IOU = 0.5
RECALL_AT = (1, 5, 10)


@dataclass(frozen=True)
class EvalImage:
    image_id: str
    path: str
    proposals: np.ndarray                    # [P, 4] x1, y1, x2, y2
    short_caption: str | None = None
    long_caption: str | None = None
    local_gallery: bool = True               # one of the local-retrieval gallery's images


@dataclass(frozen=True)
class Expression:
    expression_id: str
    image_id: str
    phrase: str
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class LocalQuery:
    query_id: str
    text: str
    image_id: str                            # the one relevant image


@dataclass
class EncodedImages:
    objects: list[torch.Tensor]      # per image [P, H]
    iou_logits: list[torch.Tensor]   # per image [P]
    coarse: torch.Tensor             # [N, H]
    detailed: torch.Tensor

    def subset(self, indices: list[int]) -> "EncodedImages":
        return EncodedImages([self.objects[i] for i in indices], [self.iou_logits[i] for i in indices],
                             self.coarse[indices], self.detailed[indices])


@torch.no_grad()
def encode_images(embedder: ObjectEmbedder, images: list[EvalImage], batch_size: int = 16,
                  progress: bool = False) -> EncodedImages:
    """Each image once through the object embedder, with all its proposals."""
    embedder.eval()
    objects, ious, coarse, detailed = [], [], [], []
    for start in tqdm(range(0, len(images), batch_size), desc="objects", disable=not progress, mininterval=1.0):
        chunk = images[start:start + batch_size]
        out = embedder.forward_images(embedder.inputs.images([i.path for i in chunk], [i.proposals for i in chunk]))
        objects += list(out.objects.split(out.counts))
        ious += list(out.iou_logits.split(out.counts))
        coarse.append(out.coarse), detailed.append(out.detailed)
    return EncodedImages(objects, ious, torch.cat(coarse), torch.cat(detailed))


@torch.no_grad()
def encode_texts(embedder: ObjectEmbedder, texts: list[str], local: bool, batch_size: int = 64) -> torch.Tensor:
    embedder.eval()
    return torch.cat([embedder.forward_texts(embedder.inputs.texts(texts[s:s + batch_size], local))
                      for s in range(0, len(texts), batch_size)])


@torch.no_grad()
def grounding(embedder: ObjectEmbedder, images: list[EvalImage], encoded: EncodedImages,
              expressions: list[Expression]) -> dict:
    """Accuracy@0.5 of the top-scored proposal, and chance (module docstring); per-expression rows."""
    at = {image.image_id: n for n, image in enumerate(images)}
    texts = encode_texts(embedder, [e.phrase for e in expressions], local=True)
    heads, rows = embedder.heads, []
    for expression, text in zip(expressions, texts):
        n = at[expression.image_id]
        logits = matching_logits(encoded.objects[n], text[None], heads.object_log_scale, heads.object_bias)[:, 0]
        score = torch.sigmoid(logits) * torch.sigmoid(encoded.iou_logits[n])
        overlap = box_iou(torch.as_tensor(images[n].proposals, dtype=torch.float32),
                          torch.tensor([expression.box], dtype=torch.float32))[:, 0]
        top = int(score.argmax())
        rows.append({"expression_id": expression.expression_id, "top_iou": float(overlap[top]),
                     "hit": bool(overlap[top] >= GROUNDING_IOU),
                     "chance": float((overlap >= GROUNDING_IOU).float().mean())})
    return {"accuracy@0.5": 100 * float(np.mean([r["hit"] for r in rows])),
            "chance": 100 * float(np.mean([r["chance"] for r in rows])), "rows": rows}


def recall(scores: np.ndarray, relevant: np.ndarray, ks=RECALL_AT) -> dict[str, float]:
    """Recall@k (percent) of ``scores`` [queries, gallery] with one relevant gallery column per query; a gallery
    item scored the same as the relevant one ranks before it (ties never help: a constant scorer finds nothing)."""
    own = scores[np.arange(len(relevant)), relevant]
    rank = (scores >= own[:, None]).sum(1) - 1     # 0 = first
    return {f"R@{k}": 100 * float((rank < k).mean()) for k in ks}


@torch.no_grad()
def local_retrieval_scores(embedder: ObjectEmbedder, encoded: EncodedImages, queries: list[LocalQuery]) -> np.ndarray:
    """[queries, images]: each image's best proposal for each query, as the logit s (sigmoid(s) ranks the same, but
    saturates to 1.0 in float32 and would tie the best images; module docstring)."""
    texts = encode_texts(embedder, [q.text for q in queries], local=True)
    heads = embedder.heads
    columns = [matching_logits(texts, objects, heads.object_log_scale, heads.object_bias).max(1).values
               for objects in encoded.objects]
    return torch.stack(columns, 1).numpy()


@torch.no_grad()
def global_retrieval(embedder: ObjectEmbedder, images: list[EvalImage], encoded: EncodedImages) -> dict:
    """Text-to-image Recall@k for the short captions (coarse token) and the long ones (detailed token)."""
    out, heads = {}, embedder.heads
    for name, tokens in (("short", encoded.coarse), ("long", encoded.detailed)):
        kept = [n for n, image in enumerate(images) if getattr(image, f"{name}_caption")]
        if not kept:
            continue
        texts = encode_texts(embedder, [getattr(images[n], f"{name}_caption") for n in kept], local=False)
        scores = matching_logits(texts, tokens[kept], heads.image_log_scale, heads.image_bias).numpy()   # ranks as sigmoid
        out[name] = recall(scores, np.arange(len(kept)))
    return out


def whole_image_scores(embedder, images: list[EvalImage], queries: list[LocalQuery], instruction: str,
                       batch_size: int = 32) -> np.ndarray:
    """[queries, images] cosine of an ordinary embedder (:class:`uniembed.embed.embedder.Embedder`): the baseline."""
    gallery = embedder.encode([EmbedItem(None, image_path=i.path) for i in images], batch_size=batch_size)
    texts = embedder.encode([EmbedItem(q.text, instruction=instruction) for q in queries], batch_size=batch_size)
    return texts @ gallery.T


def local_gallery(images: list[EvalImage]) -> list[int]:
    """Positions of the local-retrieval gallery's images; ValueError when there are none."""
    indices = [n for n, image in enumerate(images) if image.local_gallery]
    if not indices:
        raise ValueError("no image of the local-retrieval gallery (local_gallery) to retrieve from")
    return indices


def relevant_columns(images: list[EvalImage], queries: list[LocalQuery]) -> np.ndarray:
    """Each query's relevant image as a gallery column; KeyError naming the query whose image is not in the gallery."""
    at = {image.image_id: n for n, image in enumerate(images)}
    missing = [q.query_id for q in queries if q.image_id not in at]
    if missing:
        raise KeyError(f"local-retrieval queries {missing[:5]} name images outside the gallery")
    return np.array([at[q.image_id] for q in queries])


@torch.no_grad()
def time_per_image(embedder: ObjectEmbedder, images: list[EvalImage], counts, repeats: int = 3,
                   seed: int = 0) -> dict[int, float]:
    """Milliseconds per image of one forward over ``images`` (one batch) with ``count`` proposals each (random boxes
    inside each image), the median of ``repeats`` after one warm-up: the cost of more objects in the one pass."""
    rng = np.random.default_rng(seed)
    out = {}
    embedder.eval()
    for count in counts:
        boxes = []
        for image in images:
            with Image.open(image.path) as opened:   # the header only
                size = np.array(opened.size, dtype=float)
            corner = rng.uniform(0, size * 0.7, size=(count, 2))
            boxes.append(np.concatenate([corner, corner + rng.uniform(4, size * 0.3, size=(count, 2))], 1))
        prepared = embedder.inputs.images([i.path for i in images], boxes)
        out[count] = _median_ms(lambda: embedder.forward_images(prepared), repeats) / len(images)
    return out


def time_whole_image(embedder, images: list[EvalImage], repeats: int = 3) -> float:
    """Milliseconds per image of an ordinary embedder's forward over the same batch (the baseline's cost)."""
    prepared = embedder.inputs([EmbedItem(None, image_path=i.path) for i in images])
    with torch.no_grad():
        return _median_ms(lambda: embedder.forward_prepared(prepared), repeats) / len(images)


def _median_ms(run, repeats: int) -> float:
    """Milliseconds of ``run()``, the median of ``repeats`` calls after one warm-up."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times[1:]))
