"""The object task (ObjEmbed, seed 002 §3.2): LoRA on the language model of an object embedder, its new heads trained
in full, the vision tower frozen; batches of images with their proposals, phrases and captions.

A step is prepared on the CPU by :class:`ObjectSteps` (a pure function of the step, as every task's): the sampler's
images, each image's proposals (``num_proposals`` drawn from its list; a box that none of them covers at IoU >= 0.5
gets its own box added, as the released code does), the step's text columns and what the boxes say of every
(proposal, text) pair:

* a **category** text ("a small red square": true of any object of that kind in any image) is one column for the
  whole batch, positive for every proposal of any image that covers such an object (IoU > ``positive_iou``);
* a **referring phrase** ("the red square": unique within its own image only) is one column per object, scored
  against its own image's proposals; against the other images' proposals it says nothing and is masked out. (The
  released code scores every gathered text against every proposal; a relative phrase is then a false negative
  wherever another image has an object it fits.)

Each process encodes its share of the images and of the text columns; the object embeddings, objectness logits,
global tokens and text embeddings are gathered with the local gradient kept, so every process computes the same
loss on the whole global batch (as the contrastive task does: :mod:`uniembed.train.distributed`). With
``chunk_size`` the step runs through GradCache (:mod:`uniembed.train.gradcache`): images and texts in chunks of that
many, each image chunk's outputs packed into one tensor (:func:`pack`) so that one cached gradient serves it; across
processes every chunk's backward runs under ``no_sync`` and the gradients are averaged once after the last (a text
chunk uses none of the object heads, so DDP's own reduction, which expects every parameter, cannot run per chunk).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..artifacts import atomic_path, write_json
from ..data.loader import Pinnable
from ..embed.cache import file_digest, fingerprint_model_dir
from ..embed.objects import ImageOutputs, ObjectEmbedder, ObjectInputs, PreparedImages, PreparedTexts
from .data import BatchSampler
from .distributed import average_gradients, gather_with_grad, world_info
from .gradcache import chunks, gradcache_chunks
from .lora import apply_lora
from .object_data import ObjectTrainingSet, cover_boxes, load_object_training_set
from .objectives.objembed import ObjectLabels
from ..model.regions import box_iou
from .settings import TrainSettings


@dataclass(frozen=True)
class PreparedObjectStep(Pinnable):
    images: list[PreparedImages]     # this process's images with their proposals, in GradCache's chunks (one without)
    texts: list[PreparedTexts]       # this process's share of the text columns, then its short and long captions
    layout: tuple[tuple[int, int], ...]   # per image chunk: (its proposals, its images)
    text_rows: tuple[int, int, int]       # this process's local texts, short and long captions
    labels: ObjectLabels            # every proposal of the global batch (rows in process order) x every column
    proposals: tuple[int, ...]      # proposals per process (each gathers its own, padded to the largest)
    items: int


@dataclass(frozen=True)
class ObjectSteps:
    """step -> :class:`PreparedObjectStep` for this process (module docstring)."""
    data: ObjectTrainingSet
    sampler: BatchSampler
    inputs: ObjectInputs
    num_proposals: int
    positive_iou: float
    rank: int
    world: int
    chunk_size: int | None = None

    def __call__(self, step: int) -> PreparedObjectStep:
        indices, rng = self.sampler.at(step)
        images = [self.data.images[int(i)] for i in indices]
        proposals = [cover_boxes(image.proposals[rng.permutation(len(image.proposals))[:self.num_proposals]],
                                 image.boxes, self.positive_iou) for image in images]
        columns = _columns(images, self.world)
        per_rank = len(images) // self.world
        pairs = [_pairs(image, b, boxes, columns) for b, (image, boxes) in enumerate(zip(images, proposals))]
        labels = ObjectLabels(torch.cat([p[0] for p in pairs]), torch.cat([p[1] for p in pairs]),
                              torch.cat([p[2] for p in pairs]))
        counts = tuple(sum(len(boxes) for boxes in proposals[r * per_rank:(r + 1) * per_rank]) for r in range(self.world))
        share = len(columns) // self.world
        texts = [text for text, _, _ in columns[self.rank * share:(self.rank + 1) * share]]
        local = list(range(self.rank * per_rank, (self.rank + 1) * per_rank))
        cut = (lambda items: chunks(items, self.chunk_size)) if self.chunk_size else (lambda items: [list(items)])
        image_chunks = cut(local)
        short, long = [images[b].short_caption for b in local], [images[b].long_caption for b in local]
        return PreparedObjectStep(
            [self.inputs.images([images[b].path for b in c], [proposals[b] for b in c]) for c in image_chunks],
            [self.inputs.texts(c, local=True) for c in cut(texts)]
            + [self.inputs.texts(c, local=False) for c in cut(short) + cut(long)],
            tuple((sum(len(proposals[b]) for b in c), len(c)) for c in image_chunks),
            (len(texts), len(short), len(long)), labels, counts, len(local) + len(texts))


def pack(outputs: ImageOutputs) -> torch.Tensor:
    """One image chunk's outputs as one tensor [K + 2 b, H + 1] (GradCache caches one gradient per chunk): the
    objects with their objectness logit as a last column, then the coarse and the detailed tokens (last column 0)."""
    tokens = torch.cat([outputs.coarse, outputs.detailed])
    return torch.cat([torch.cat([outputs.objects, outputs.iou_logits[:, None]], 1),
                      torch.cat([tokens, tokens.new_zeros(len(tokens), 1)], 1)])


def unpack(packed: torch.Tensor, layout) -> ImageOutputs:
    """The chunks of :func:`pack`, concatenated, back as one :class:`ImageOutputs` in image order."""
    objects, coarse, detailed, start = [], [], [], 0
    for proposals, images in layout:
        objects.append(packed[start:start + proposals])
        coarse.append(packed[start + proposals:start + proposals + images, :-1])
        detailed.append(packed[start + proposals + images:start + proposals + 2 * images, :-1])
        start += proposals + 2 * images
    objects = torch.cat(objects)
    return ImageOutputs(objects[:, :-1], objects[:, -1], torch.cat(coarse), torch.cat(detailed), [])


def gather_rows(local: torch.Tensor, counts: tuple[int, ...]) -> torch.Tensor:
    """Rows of every process in process order (``counts`` rows each, unequal), local gradient kept: each pads its
    rows to the largest count for ``all_gather`` and the padding is dropped again."""
    if len(counts) == 1:
        return local
    padded = torch.cat([local, local.new_zeros(max(counts) - len(local), *local.shape[1:])])
    gathered = gather_with_grad(padded)
    return torch.cat([gathered[r * max(counts):r * max(counts) + n] for r, n in enumerate(counts)])


def _columns(images, world: int) -> list[tuple[str, int | None, int | None]]:
    """(text, image, object) per column: categories first (image and object None), then each image's phrases; padded
    with copies of the first (image -1: masked everywhere) to a multiple of ``world``."""
    categories = list(dict.fromkeys(o.text for image in images for o in image.objects if o.category))
    columns = [(text, None, None) for text in categories]
    columns += [(o.text, b, k) for b, image in enumerate(images) for k, o in enumerate(image.objects) if not o.category]
    columns += [(columns[0][0], -1, None)] * (-len(columns) % world)
    return columns


def _pairs(image, b: int, proposals: np.ndarray, columns) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(IoU, mask) of each proposal of image ``b`` with each column, and each proposal's best IoU with any box."""
    iou = box_iou(torch.as_tensor(proposals, dtype=torch.float32), torch.as_tensor(image.boxes, dtype=torch.float32))
    pair_ious = torch.zeros(len(proposals), len(columns))
    mask = torch.ones(len(proposals), len(columns))
    for c, (text, owner, k) in enumerate(columns):
        if owner is None:                    # a category: any object of this image it names
            hits = [j for j, o in enumerate(image.objects) if o.category and o.text == text]
            if hits:
                pair_ious[:, c] = iou[:, hits].max(1).values
        elif owner == b:                     # this image's own phrase
            pair_ious[:, c] = iou[:, k]
        else:                                # another image's phrase, or padding
            mask[:, c] = 0
    return pair_ious, mask, iou.max(1).values if iou.shape[1] else torch.zeros(len(proposals))


class ObjectTask:
    """Builds the object embedder (LoRA on the decoder, heads in full) and the training set."""

    def __init__(self, settings: TrainSettings, objective, *, base_model, region_dir, device: str = "auto"):
        rank, world = world_info()
        if world > 1 and torch.cuda.is_available():
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}"
        if settings.batch_size % world:
            raise ValueError(f"batch_size {settings.batch_size} must be divisible by the {world} processes")
        if settings.backend != "ddp":
            raise ValueError(f"objembed: backend {settings.backend!r} is not supported by the object task (ddp only)")
        torch.manual_seed(settings.seed)
        s = objective.settings
        self.base_model, self.region_dir = base_model, Path(region_dir)
        self.embedder = ObjectEmbedder.from_base(base_model, roi_size=s.roi_size, seed=settings.seed, device=device)
        self.embedder.model = apply_lora(self.embedder.model, settings.lora)
        self.model, self.device = self.embedder, self.embedder.device
        self.encoder = self.embedder
        objective.to(self.device)
        self.data = load_object_training_set(self.region_dir)
        self.sampler = BatchSampler(len(self.data.images), settings.batch_size, settings.seed)
        self.prepare = ObjectSteps(self.data, self.sampler, self.embedder.inputs, s.num_proposals, s.positive_iou,
                                   rank, world, settings.chunk_size)

    def fingerprint(self) -> dict:
        return {"task": "objects", "base_model": fingerprint_model_dir(self.base_model, full=True),
                "data": {name: file_digest(self.region_dir / name) for name in ("images.parquet", "objects.parquet")}}

    def attach(self, encoder) -> None:
        self.encoder = encoder

    def step(self, batch: PreparedObjectStep, objective, backend, settings: TrainSettings) -> tuple[torch.Tensor, int]:
        """Every process computes the same loss on the gathered global batch (so DDP's average of the local-slot
        gradients, scaled by the world size in the gather, is the global batch's gradient: train/distributed.py);
        with ``chunk_size``, through GradCache (image chunks packed, :func:`pack`)."""
        def loss_fn(images: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
            local = unpack(images, batch.layout)
            words, short, long = texts.split(batch.text_rows)
            outputs = ImageOutputs(gather_rows(local.objects, batch.proposals),
                                   gather_rows(local.iou_logits[:, None], batch.proposals)[:, 0],
                                   gather_with_grad(local.coarse), gather_with_grad(local.detailed), [])
            return objective(outputs, gather_with_grad(words), gather_with_grad(short), gather_with_grad(long),
                             batch.labels, self.embedder.heads)

        if settings.chunk_size:   # every chunk's backward local, then one average (a chunk uses only some modules)
            def encode(chunk):
                out = self.encoder(chunk)[0]
                return pack(out) if isinstance(chunk, PreparedImages) else out

            with backend.no_sync():
                loss = gradcache_chunks(encode, batch.images, batch.texts, loss_fn)
            average_gradients(self.model)
            return loss, batch.items
        outputs = self.encoder(*batch.images, *batch.texts)
        images = torch.cat([pack(o) for o in outputs[:len(batch.images)]])
        loss = loss_fn(images, torch.cat(outputs[len(batch.images):]))
        backend.backward(loss)
        return loss.detach(), batch.items

    def summary(self) -> dict:
        return {"num_images": len(self.data.images), "num_objects": sum(len(i.objects) for i in self.data.images)}

    def save(self, out_dir: Path, summary: dict, objective) -> None:
        """``out_dir/adapter`` (the LoRA), ``out_dir/model`` (LoRA merged, heads, processor: what
        :meth:`ObjectEmbedder.from_pretrained` loads) and ``training_summary.json``, atomically."""
        with atomic_path(out_dir, directory=True, manifest=True) as tmp:
            self.embedder.model.save_pretrained(tmp / "adapter")
            self.embedder.save_pretrained(tmp / "model", model=self.embedder.model.merge_and_unload())
            write_json(summary, tmp / "training_summary.json")
