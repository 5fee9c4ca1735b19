"""The object task's training set (ObjEmbed, seed 002 §3.2), read from the curated region tables
(:mod:`uniembed.data.readers.region_tables`): each image with its proposals, captions and labelled boxes."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch

from ..model.regions import box_iou

CATEGORY, PHRASE = "category", "phrase"


@dataclass(frozen=True)
class TrainingObject:
    text: str
    box: tuple[float, float, float, float]   # x1, y1, x2, y2
    category: bool                           # true of any object of its kind (else a phrase unique in its image)


@dataclass(frozen=True)
class TrainingImage:
    path: str
    proposals: np.ndarray                    # [P, 4]
    objects: tuple[TrainingObject, ...]
    short_caption: str
    long_caption: str

    @property
    def boxes(self) -> np.ndarray:
        return np.array([o.box for o in self.objects], dtype=np.float32).reshape(-1, 4)


@dataclass(frozen=True)
class ObjectTrainingSet:
    images: list[TrainingImage]


def load_object_training_set(region_dir: str | Path) -> ObjectTrainingSet:
    """Images with at least one labelled object, a short and a long caption; ValueError naming the table otherwise."""
    region_dir = Path(region_dir)
    images = pq.read_table(region_dir / "images.parquet").to_pylist()
    objects: dict[str, list[TrainingObject]] = {}
    for row in pq.read_table(region_dir / "objects.parquet").to_pylist():
        if row["kind"] not in (CATEGORY, PHRASE):
            raise ValueError(f"{region_dir / 'objects.parquet'}: object {row['object_id']!r}: kind must be "
                             f"{CATEGORY!r} or {PHRASE!r}, got {row['kind']!r}")
        objects.setdefault(row["image_id"], []).append(
            TrainingObject(row["phrase"], tuple(row["box"]), row["kind"] == CATEGORY))
    out = []
    for row in images:
        if not row.get("short_caption") or not row.get("long_caption"):
            raise ValueError(f"{region_dir / 'images.parquet'}: image {row['image_id']!r} lacks a short or long caption "
                             f"(the two global tokens' image loss needs both)")
        if row["image_id"] in objects:
            out.append(TrainingImage(row["image_path"], np.array(row["proposals"], dtype=np.float32).reshape(-1, 4),
                                     tuple(objects[row["image_id"]]), row["short_caption"], row["long_caption"]))
    if not out:
        raise ValueError(f"{region_dir}: no image with a labelled object to train on")
    return ObjectTrainingSet(out)


def cover_boxes(proposals: np.ndarray, boxes: np.ndarray, threshold: float) -> np.ndarray:
    """``proposals`` with every box of ``boxes`` that none of them overlaps at IoU > ``threshold`` (eq. 2's positive)
    appended (the released code's rule: each labelled box has a positive proposal)."""
    if not len(boxes):
        return proposals
    iou = box_iou(torch.as_tensor(proposals, dtype=torch.float32), torch.as_tensor(boxes, dtype=torch.float32))
    covered = (iou > threshold).any(0).numpy() if len(proposals) else np.zeros(len(boxes), bool)
    missing = np.unique(boxes[~covered], axis=0)
    return np.concatenate([proposals, missing]).astype(np.float32) if len(missing) else proposals
