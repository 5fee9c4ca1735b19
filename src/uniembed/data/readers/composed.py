"""Readers of the composed image retrieval sets (CIRCO, CIRR, FashionIQ), in their public formats.

A query is a reference image and a text saying how the wanted image differs from it: M-BEIR task 7,
(image, text) -> image. Each split's image gallery is its pool ``<dataset>_<split>``. The readers default to the
validation splits the papers report: CIRCO's test and CIRR's test1 files hide their targets (scored by the sets'
servers), so they lack the target keys and are format errors.

**CIRCO** (Baldrati et al. 2023, "Zero-Shot Composed Image Retrieval with Textual Inversion"; miccunifi/CIRCO)::

    annotations/val.json    [{"id": 0, "reference_img_id": 85932, "target_img_id": 237, "relative_caption":
                              "has two children instead of cats", "shared_concept": "...", "gt_img_ids": [237, ...]}]
    COCO2017_unlabeled/unlabeled2017/000000085932.jpg             images (``image_root``: COCO2017_unlabeled)
    COCO2017_unlabeled/annotations/image_info_unlabeled2017.json  {"images": [{"id": 85932, "file_name": ...}]}

Every ``gt_img_ids`` image is a positive. The gallery is COCO 2017 unlabeled (about 123k images; CIRCO's
``CIRCODataset``) when its ``image_info_unlabeled2017.json`` is there (``gallery=None``; True requires it), else
only the images the split's annotations reference, numbered by their first record (``notes['gallery']`` says
which; scores over that small pool are not CIRCO's). Metric: mAP@5/10/25/50 over all ``gt_img_ids``
(``metrics.map_at_k(..., denominator="min(R,k)")``, CIRCO ``src/evaluation.py``), Recall@k on ``target_img_id``.

**CIRR** (Liu et al. 2021, "Image Retrieval on Real-life Images with Pre-trained Vision-and-Language Models")::

    captions/cap.rc2.val.json        [{"pairid": 12063, "reference": "dev-147-1-img0", "target_hard":
                                       "dev-846-2-img0", "target_soft": {...}, "caption": "...",
                                       "img_set": {"id": 464, "members": ["dev-147-1-img0", ...]}}, ...]
    image_splits/split.rc2.val.json  {"dev-147-1-img0": "./dev/dev-147-1-img0.png", ...}

``root`` holds ``captions/`` and ``image_splits/`` (the ``cirr/`` folder); image paths are relative to
``image_root``, by default its parent (``cirr_dataset/`` in CLIP4Cir's layout). Each pair gives a query over the
split's images (dataset ``cirr``: Recall@1/5/10/50) and one whose candidates are its ``img_set`` members other than
the reference (dataset ``cirr_subset``: Recall_subset@1/2/3). CIRR's protocol (CLIP4Cir
``compute_cirr_val_metrics``) also drops the reference image from each ranking over the split; the query's
``image_path`` names it, and the scorer has to drop it.

**FashionIQ** (Wu et al. 2021, "Fashion IQ: A New Dataset Towards Retrieving Images by Natural Language Feedback")::

    captions/cap.dress.val.json        [{"target": "B008BHCT58", "candidate": "B003FGW7MK",
                                         "captions": ["is solid black with no sleeves", "is black with straps"]}]
    image_splits/split.dress.val.json  ["B008BHCT58", "B003FGW7MK", ...]
    images/B008BHCT58.jpg              (``image_root``, default ``root/images``; ``image_ext`` ".jpg" or ".png")

One dataset per category (``fashioniq_dress``, ``_shirt``, ``_toptee``), pool: the category split's images. The
query text joins the captions as CLIP4Cir's validation does (Baldrati et al. 2022, ``src/validate.py``): each
stripped of ``.?,`` and spaces at its ends, the first capitalized, joined with " and ". Metric: Recall@10/50.

A structural error (unreadable JSON, a missing key, a wrong type) is a ``SourceFormatError`` naming the file and
the record; an empty caption, an image outside ``image_root``, an image name missing from the gallery
(``unknown_image``: CIRR's reference, target and ``img_set`` members, FashionIQ's target, CIRCO's reference and
positives when the gallery is COCO's) or a target outside the positives (CIRCO) or the ``img_set`` (CIRR) is a
quarantine row; a missing image file is quarantined by curation's image check.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Iterable

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..paths import RootedPaths
from ..validate import Problem
from .retrieval import COMPOSED, add_image, add_query, field, load_json, load_json_list

FASHIONIQ_CATEGORIES = ("dress", "shirt", "toptee")


@dataclass
class _Split:
    """Where one split of a composed set goes: its records, image root, dataset and pool."""

    records: SourceRecords
    paths: RootedPaths
    dataset: str
    split: str

    @property
    def pool(self) -> str:
        return f"{self.dataset}_{self.split}"

    def image_id(self, key) -> str:
        return f"{self.dataset}:image:{key}"

    def images(self, path: Path, images: Iterable[tuple[int, object, str]]) -> None:
        """The gallery: ``(record number, image key, path under the image root)`` read from ``path``."""
        for number, key, relpath in images:
            add_image(self.records, self.paths, relpath, self.image_id(key), self.dataset, self.pool, path, number)

    def query(self, path: Path, number: int, key, dataset: str | None = None, **query) -> bool:
        dataset = dataset or self.dataset
        return add_query(self.records, COMPOSED, f"{dataset}:{self.split}:{key}", dataset, self.split, self.pool,
                         path, number, **query)


def _unknown(known: Collection, names: Iterable, where: str) -> Problem | None:
    missing = [name for name in names if name not in known]
    return ("unknown_image", f"{', '.join(map(repr, missing))} not among the images of {where}") if missing else None


def _records(name: str, datasets: Iterable[str]) -> SourceRecords:
    records = SourceRecords(name)
    for dataset in datasets:
        records.datasets.append(dataset=dataset, source=name)
    return records


# --- CIRCO -----------------------------------------------------------------------------------------------------
def _circo_entry(entry, path: Path, number: int) -> tuple[int, int, int, str, list[int]]:
    qid, reference, target = (field(entry, key, int, path, number)
                              for key in ("id", "reference_img_id", "target_img_id"))
    caption = field(entry, "relative_caption", str, path, number)
    positives = field(entry, "gt_img_ids", list, path, number, items=int)
    return qid, reference, target, caption, list(dict.fromkeys(positives))


def _circo_gallery(path: Path) -> list[tuple[int, int, str]]:
    """COCO 2017 unlabeled: ``(record number, image id, path)`` of each ``image_info_unlabeled2017.json`` image."""
    images = field(load_json(path, "COCO's image info JSON"), "images", list, path, None)
    gallery = []
    for number, image in enumerate(images, start=1):
        file_name = field(image, "file_name", str, path, number)
        gallery.append((number, field(image, "id", int, path, number), f"unlabeled2017/{file_name}"))
    return gallery


def _circo_referenced(entries: list[tuple]) -> list[tuple[int, int, str]]:
    """Each image the annotations name (reference or positive), numbered by the first record naming it."""
    first: dict[int, tuple[int, int, str]] = {}
    for number, (_, reference, _, _, positives) in enumerate(entries, start=1):
        for image_id in (reference, *positives):
            first.setdefault(image_id, (number, image_id, f"unlabeled2017/{image_id:012d}.jpg"))
    return list(first.values())


def read_circo(name: str, root: str | os.PathLike, image_root: str | os.PathLike | None = None,
               splits: Iterable[str] = ("val",), gallery: bool | None = None,
               dataset: str | None = None) -> SourceRecords:
    """Each annotation: reference image + relative caption -> every ``gt_img_ids`` image, over the gallery."""
    root, dataset = Path(root), dataset or "circo"
    coco = Path(image_root) if image_root else root / "COCO2017_unlabeled"
    info = coco / "annotations" / "image_info_unlabeled2017.json"
    gallery = info.is_file() if gallery is None else gallery
    paths, records = RootedPaths(coco), _records(name, [dataset])
    records.notes["gallery"] = str(info) if gallery else "the images the annotations reference"
    for split in splits:
        at, path = _Split(records, paths, dataset, split), root / "annotations" / f"{split}.json"
        entries = [_circo_entry(entry, path, number) for number, entry in
                   enumerate(load_json_list(path, "a CIRCO annotation file: a JSON list of queries"), start=1)]
        images, images_file = (_circo_gallery(info), info) if gallery else (_circo_referenced(entries), path)
        at.images(images_file, images)
        known: dict[int, str] = {}
        for _, key, relpath in images:
            known.setdefault(key, relpath)
        for number, (qid, reference, target, caption, positives) in enumerate(entries, start=1):
            image, problem = paths.resolve(known[reference]) if reference in known else (None, None)
            problem = _unknown(known, [reference, *positives], images_file.name) or problem
            if problem is None and target not in positives:
                problem = ("conflicting_labels", f"target_img_id {target} is not among gt_img_ids {positives}")
            at.query(path, number, qid, positives=[at.image_id(p) for p in positives], text=caption.strip(),
                     original=caption, image=image, problem=problem)
    return records


# --- CIRR ------------------------------------------------------------------------------------------------------
def _cirr_images(path: Path) -> dict[str, str]:
    relpaths = load_json(path, "a CIRR image split: a JSON object mapping image names to paths")
    if not isinstance(relpaths, dict):
        raise SourceFormatError(path, None, "a JSON object mapping image names to paths", type(relpaths).__name__)
    for number, (image_name, relpath) in enumerate(relpaths.items(), start=1):
        if not isinstance(relpath, str):
            raise SourceFormatError(path, number, f"the path of {image_name!r} as a string", type(relpath).__name__)
    return relpaths


def _cirr_pair(at: _Split, path: Path, number: int, entry, relpaths: dict[str, str], where: str) -> None:
    pairid = field(entry, "pairid", int, path, number)
    reference, target, caption = (field(entry, key, str, path, number)
                                  for key in ("reference", "target_hard", "caption"))
    members = field(field(entry, "img_set", dict, path, number), "members", list, path, number, "img_set's ", str)
    image, problem = at.paths.resolve(relpaths[reference]) if reference in relpaths else (None, None)
    problem = _unknown(relpaths, [reference, target], where) or problem
    query = dict(positives=[at.image_id(target)], text=caption.strip(), original=caption, image=image)
    at.query(path, number, pairid, problem=problem, **query)
    others = [member for member in members if member != reference]
    problem = problem or _unknown(relpaths, others, where)
    if problem is None and target not in others:
        problem = ("positive_not_in_img_set", f"target_hard {target!r} is not among the img_set members {members}")
    at.query(path, number, pairid, f"{at.dataset}_subset", candidate_ids=[at.image_id(m) for m in others],
             problem=problem, **query)


def read_cirr(name: str, root: str | os.PathLike, image_root: str | os.PathLike | None = None,
              splits: Iterable[str] = ("val",), dataset: str | None = None) -> SourceRecords:
    """Each pair: reference image + caption -> ``target_hard``, over the split's images and within its img_set."""
    root, dataset = Path(root), dataset or "cirr"
    paths = RootedPaths(Path(image_root) if image_root else root.parent)
    records = _records(name, [dataset, f"{dataset}_subset"])
    for split in splits:
        at = _Split(records, paths, dataset, split)
        split_file = root / "image_splits" / f"split.rc2.{split}.json"
        path = root / "captions" / f"cap.rc2.{split}.json"
        relpaths = _cirr_images(split_file)
        at.images(split_file, ((number, *item) for number, item in enumerate(relpaths.items(), start=1)))
        for number, entry in enumerate(load_json_list(path, "a CIRR caption file: a JSON list of pairs"), start=1):
            _cirr_pair(at, path, number, entry, relpaths, split_file.name)
    return records


# --- FashionIQ -------------------------------------------------------------------------------------------------
def fashioniq_text(captions: list[str]) -> tuple[str | None, Problem | None]:
    """CLIP4Cir's query text (Baldrati et al. 2022): ``f"{c0.strip('.?, ').capitalize()} and {c1.strip('.?, ')}"``."""
    parts = [caption.strip().strip(".?, ") for caption in captions]
    if not parts or not all(parts):
        return None, ("empty_text", f"captions {captions!r}: an empty caption")
    return " and ".join([parts[0].capitalize(), *parts[1:]]), None


def _fashioniq_names(path: Path) -> list[str]:
    names = load_json_list(path, "a FashionIQ image split: a JSON list of image names")
    for number, image_name in enumerate(names, start=1):
        if not isinstance(image_name, str):
            raise SourceFormatError(path, number, "an image name (a string)", type(image_name).__name__)
    return names


def read_fashioniq(name: str, root: str | os.PathLike, image_root: str | os.PathLike | None = None,
                   splits: Iterable[str] = ("val",), categories: Iterable[str] = FASHIONIQ_CATEGORIES,
                   image_ext: str = ".jpg") -> SourceRecords:
    """Each triplet: candidate image + its captions -> target, over the category split's images."""
    root, categories = Path(root), list(categories)
    paths = RootedPaths(Path(image_root) if image_root else root / "images")
    records = _records(name, [f"fashioniq_{category}" for category in categories])
    for category in categories:
        for split in splits:
            at = _Split(records, paths, f"fashioniq_{category}", split)
            split_file = root / "image_splits" / f"split.{category}.{split}.json"
            names = _fashioniq_names(split_file)
            at.images(split_file, ((number, key, f"{key}{image_ext}") for number, key in enumerate(names, start=1)))
            known, path = set(names), root / "captions" / f"cap.{category}.{split}.json"
            for number, entry in enumerate(load_json_list(path, "a FashionIQ caption file: a JSON list"), start=1):
                target, candidate = (field(entry, key, str, path, number) for key in ("target", "candidate"))
                captions = field(entry, "captions", list, path, number, items=str)
                image, outside = paths.resolve(f"{candidate}{image_ext}")
                text, problem = fashioniq_text(captions)
                at.query(path, number, number, positives=[at.image_id(target)], text=text,
                         original=json.dumps(captions, ensure_ascii=False), image=image,
                         problem=_unknown(known, [target], split_file.name) or outside or problem)
    return records
