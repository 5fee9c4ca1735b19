"""Readers of the region formats ObjEmbed (seed 002 §3.2, §4) trains and is evaluated on, into canonical region
records (tables: :mod:`.region_tables`):

* **ObjEmbed training** (``train.jsonl`` + ``proposals.json``): per image ``{"image", "objects": [{"label",
  "bbox": [x1, y1, x2, y2]}], "captions": {"short_caption", "long_caption"}}`` (optional ``width``, ``height``), and
  ``{image: [[x1, y1, x2, y2], ...]}`` of proposals;
* **SORCE-1K** local image retrieval: per query ``{"image", "caption", "bbox": [[x, y, w, h], ...]}``;
* **RefCOCO in MDETR/GLIP's refexp format**: COCO-style ``images`` (one entry per expression: ``file_name``, ``id``,
  ``caption``, optional ``width``/``height``) and ``annotations`` (``id``, ``image_id``, ``bbox`` [x, y, w, h]).

Every reader uses the image's path relative to ``root``, normalised (``images/eval/3.png``), as its ``image_id``, so
the three share image ids; boxes come out as float [x1, y1, x2, y2]. Image sizes come from the JSON where given,
else from the file's header (PIL, no decoding). Each reader returns ``(records, quarantine)``; a quarantine row is
``{"file", "record", "key", "reason", "value"}``: the record is the line number (JSON lines), the entry
(``images[4]``, ``annotations[7]``) or the proposals key, and ``"<line>:objects[<k>]"`` for one object of a training
image. Reasons: ``path_outside_root``, ``missing_image``, ``unreadable_image``, ``empty_phrase`` (phrase, caption or
query text empty), ``box_outside_image`` (beyond 1 px of the image, or width or height <= 0; boxes within the
tolerance are clipped to the image), ``unknown_image_id``, ``annotations_per_expression`` (MDETR: exactly one),
``duplicate_image_id``, ``duplicate_expression_id``, ``no_proposals``, ``no_objects`` (every object quarantined).
A bad object quarantines that object only; a bad proposal that proposal only. A structural problem (unparseable
JSON, a missing key, a wrong type) raises :class:`~uniembed.data.errors.SourceFormatError` naming file, line or
entry, and the expectation.
"""
from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

from PIL import Image

from ..errors import SourceFormatError
from ..jsonl import iter_json_lines
from ..paths import PATH_OUTSIDE_ROOT, RootedPaths
from .retrieval import field, load_json

BOX_TOLERANCE = 1.0   # pixels a box may stick out of its image (then clipped)
Records = tuple[list[dict], list[dict]]


def image_key(root: str | os.PathLike, path: str) -> str:
    """``path`` relative to ``root``, normalised, with forward slashes: the image id every reader uses."""
    joined = os.path.normpath(os.path.join(os.fspath(root), path))
    return Path(os.path.relpath(joined, os.path.normpath(os.fspath(root)))).as_posix()


def box_numbers(value, path: Path, line: int | None, what: str) -> list[float]:
    """Four numbers, else a SourceFormatError."""
    if not (isinstance(value, list) and len(value) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
        raise SourceFormatError(path, line, f"{what} as a list of 4 numbers", repr(value)[:80])
    return [float(v) for v in value]


def xywh_to_xyxy(box: list[float]) -> list[float]:
    x, y, w, h = box
    return [x, y, x + w, y + h]


def fit_box(box: list[float], width: int, height: int) -> list[float] | None:
    """``box`` clipped to the image when it lies within :data:`BOX_TOLERANCE` of it with positive sides; else None."""
    x1, y1, x2, y2 = box
    if not (x2 > x1 and y2 > y1):   # also false for NaN
        return None
    t = BOX_TOLERANCE
    if x1 < -t or y1 < -t or x2 > width + t or y2 > height + t:
        return None
    w, h = float(width), float(height)
    return [min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(x2, w), min(y2, h)]


class RegionChecks:
    """The value checks the readers share (paths, image files, boxes, phrases); collects quarantine rows."""

    def __init__(self, root: str | os.PathLike):
        self.root, self.paths = os.fspath(root), RootedPaths(root)
        self.quarantine: list[dict] = []
        self._sizes: dict[str, tuple[int, int] | str] = {}   # size, or why it is unreadable

    def reject(self, file: Path, record, key: str, reason: str, value) -> None:
        text = value if isinstance(value, str) else json.dumps(value)
        self.quarantine.append({"file": str(file), "record": str(record), "key": key, "reason": reason, "value": text})

    def image(self, file: Path, record, key: str, path: str, size: tuple | None = None):
        """``(image_id, (width, height))`` of an image inside the root that exists, else None (quarantined)."""
        joined, problem = self.paths.resolve(path)
        if problem is not None:
            self.reject(file, record, key, PATH_OUTSIDE_ROOT, problem[1])
            return None
        if not os.path.isfile(joined):
            self.reject(file, record, key, "missing_image", f"{path!r}: no file {joined}")
            return None
        image_id = image_key(self.root, path)
        if size is None:
            if image_id not in self._sizes:
                try:
                    with Image.open(joined) as im:   # reads the header only
                        self._sizes[image_id] = im.size
                except (OSError, ValueError) as exc:
                    self._sizes[image_id] = f"{path!r}: {exc}"
            size = self._sizes[image_id]
            if isinstance(size, str):
                self.reject(file, record, key, "unreadable_image", size)
                return None
        return image_id, size

    def text(self, file: Path, record, key: str, text: str) -> bool:
        if text.strip():
            return True
        self.reject(file, record, key, "empty_phrase", text)
        return False

    def proposals(self, file: Path, image_id: str, boxes: list[list[float]], size: tuple) -> list[list[float]]:
        """An image's proposals fitted to it; each bad one quarantined alone (record: the image, key: ``[i]``)."""
        fitted = [self.box(file, image_id, f"[{i}]", b, size) for i, b in enumerate(boxes)]
        return [b for b in fitted if b is not None]

    def box(self, file: Path, record, key: str, box: list[float], size: tuple, shown=None) -> list[float] | None:
        """The box (xyxy) fitted to the image, else None (quarantined as ``box_outside_image``)."""
        fitted = fit_box(box, *size)
        if fitted is None:
            self.reject(file, record, key, "box_outside_image",
                        f"{json.dumps(shown if shown is not None else box)} in a {size[0]}x{size[1]} image")
        return fitted


def _size(obj: dict, path: Path, line, where: str = "") -> tuple[int, int] | None:
    """(width, height) when the record gives both, else None (read from the file)."""
    if "width" in obj or "height" in obj:
        return field(obj, "width", int, path, line, where), field(obj, "height", int, path, line, where)
    return None


def load_proposals(path: Path) -> dict[str, list[list[float]]]:
    """``{image id: [[x1, y1, x2, y2], ...]}`` of a proposals file (structure checked; boxes checked per image later)."""
    data = load_json(path, "a JSON object of proposals {image: [[x1, y1, x2, y2], ...]}")
    if not isinstance(data, dict):
        raise SourceFormatError(path, None, "a JSON object {image: [[x1, y1, x2, y2], ...]}", type(data).__name__)
    boxes: dict[str, list[list[float]]] = {}
    for key, value in data.items():
        if not isinstance(value, list):
            raise SourceFormatError(path, None, f"proposals of {key!r} as a list of boxes", type(value).__name__)
        normal = image_key(".", key)
        if normal in boxes:
            raise SourceFormatError(path, None, "one entry per image", f"two keys name {normal!r}")
        boxes[normal] = [box_numbers(b, path, None, f"proposal {i} of {key!r}") for i, b in enumerate(value)]
    return boxes


def _train_line(obj: dict, path: Path, line: int) -> dict:
    """The structure of one training line, checked: image, size, objects (label, bbox), captions."""
    captions = field(obj, "captions", dict, path, line)
    objects = []
    for k, o in enumerate(field(obj, "objects", list, path, line)):
        where = f"objects[{k}] "
        objects.append((field(o, "label", str, path, line, where),
                        box_numbers(field(o, "bbox", list, path, line, where), path, line, f"{where}'bbox'")))
    return {"image": field(obj, "image", str, path, line), "size": _size(obj, path, line), "objects": objects,
            "short": field(captions, "short_caption", str, path, line, "captions "),
            "long": field(captions, "long_caption", str, path, line, "captions ")}


def read_objembed_train(jsonl_path: str | os.PathLike, proposals_path: str | os.PathLike,
                        root: str | os.PathLike) -> Records:
    """ObjEmbed training images: ``{"image_id", "image_path", "width", "height", "objects": [{"object_id",
    "phrase", "box"}], "short_caption", "long_caption", "proposals"}`` each, and the quarantine rows."""
    path, proposals_path = Path(jsonl_path), Path(proposals_path)
    checks, proposals, images, seen = RegionChecks(root), load_proposals(proposals_path), [], set()
    for line, obj in iter_json_lines(path):
        rec = _train_line(obj, path, line)
        found = checks.image(path, line, "image", rec["image"], rec["size"])
        if found is None:
            continue
        image_id, size = found
        if image_id in seen:
            checks.reject(path, line, "image", "duplicate_image_id", image_id)
            continue
        if not (checks.text(path, line, "captions.short_caption", rec["short"])
                and checks.text(path, line, "captions.long_caption", rec["long"])):
            continue
        if image_id not in proposals:
            checks.reject(path, line, "image", "no_proposals", f"{image_id!r} has no entry in {proposals_path}")
            continue
        objects = []
        for k, (phrase, bbox) in enumerate(rec["objects"]):
            where = f"{line}:objects[{k}]"
            box = checks.box(path, where, "bbox", bbox, size) if checks.text(path, where, "label", phrase) else None
            if box is not None:
                objects.append({"object_id": f"{image_id}#{k}", "phrase": phrase, "box": box})
        if not objects:
            checks.reject(path, line, "objects", "no_objects", f"none of {len(rec['objects'])} objects is valid")
            continue
        fitted = checks.proposals(proposals_path, image_id, proposals[image_id], size)
        if not fitted:
            checks.reject(path, line, "image", "no_proposals", f"no valid proposal for {image_id!r}")
            continue
        seen.add(image_id)
        images.append({"image_id": image_id, "image_path": image_id, "width": size[0], "height": size[1],
                       "objects": objects, "short_caption": rec["short"], "long_caption": rec["long"],
                       "proposals": fitted})
    return images, checks.quarantine


def read_sorce(jsonl_path: str | os.PathLike, root: str | os.PathLike) -> Records:
    """SORCE-1K queries: ``{"query_id", "text", "image_id", "boxes": [xyxy, ...], "box"}`` each (``box``: the one
    box when there is exactly one, else None), and the quarantine rows."""
    path, checks, queries = Path(jsonl_path), RegionChecks(root), []
    for line, obj in iter_json_lines(path):
        image, text = field(obj, "image", str, path, line), field(obj, "caption", str, path, line)
        given = [] if obj.get("bbox") is None else obj["bbox"]   # no box: a query of the whole image
        if not isinstance(given, list):
            raise SourceFormatError(path, line, "'bbox' as a list of [x, y, w, h]", type(given).__name__)
        xywh = [box_numbers(b, path, line, f"bbox[{i}]") for i, b in enumerate(given)]
        found = checks.image(path, line, "image", image, _size(obj, path, line))
        if found is None or not checks.text(path, line, "caption", text):
            continue
        # the retrieval never reads the boxes (nor does the released evaluation): a bad one is quarantined alone
        boxes = [checks.box(path, f"{line}:bbox[{i}]", f"bbox[{i}]", xywh_to_xyxy(b), found[1], b)
                 for i, b in enumerate(xywh)]
        boxes = [b for b in boxes if b is not None]
        queries.append({"query_id": f"{path.stem}:{line}", "text": text, "image_id": found[0], "boxes": boxes,
                        "box": boxes[0] if len(boxes) == 1 else None})
    return queries, checks.quarantine



def _refexp_entries(path: Path) -> tuple[list[dict], list[dict]]:
    data = load_json(path, "a COCO-style refexp JSON object")
    if not isinstance(data, dict):
        raise SourceFormatError(path, None, "a COCO-style refexp JSON object", type(data).__name__)
    images = []
    for i, entry in enumerate(field(data, "images", list, path, None)):
        where = f"images[{i}] "
        images.append({"id": field(entry, "id", int, path, None, where),
                       "file_name": field(entry, "file_name", str, path, None, where),
                       "caption": field(entry, "caption", str, path, None, where),
                       "size": _size(entry, path, None, where)})
    annotations = []
    for j, ann in enumerate(field(data, "annotations", list, path, None)):
        where = f"annotations[{j}] "
        annotations.append({"id": field(ann, "id", int, path, None, where),
                            "image_id": field(ann, "image_id", int, path, None, where),
                            "bbox": box_numbers(field(ann, "bbox", list, path, None, where), path, None,
                                                f"{where}'bbox'")})
    return images, annotations


def read_refexp(json_path: str | os.PathLike, root: str | os.PathLike) -> Records:
    """Grounding expressions: ``{"expression_id", "image_id", "phrase", "box"}`` each (MDETR: one image entry and
    exactly one annotation per expression), and the quarantine rows."""
    path, checks, expressions = Path(json_path), RegionChecks(root), []
    entries, annotations = _refexp_entries(path)
    ids = defaultdict(int)
    for entry in entries:
        ids[entry["id"]] += 1
    boxes_of = defaultdict(list)
    for j, ann in enumerate(annotations):
        if ann["image_id"] in ids:
            boxes_of[ann["image_id"]].append(ann["bbox"])
        else:
            checks.reject(path, f"annotations[{j}]", "image_id", "unknown_image_id", ann["image_id"])
    for i, entry in enumerate(entries):
        record = f"images[{i}]"
        if ids[entry["id"]] > 1:
            checks.reject(path, record, "id", "duplicate_expression_id", entry["id"])
            continue
        count = len(boxes_of[entry["id"]])
        if count != 1:
            checks.reject(path, record, "id", "annotations_per_expression",
                          f"image entry {entry['id']} has {count} annotations; expected exactly 1")
            continue
        found = checks.image(path, record, "file_name", entry["file_name"], entry["size"])
        if found is None or not checks.text(path, record, "caption", entry["caption"]):
            continue
        xywh = boxes_of[entry["id"]][0]
        box = checks.box(path, record, "bbox", xywh_to_xyxy(xywh), found[1], xywh)
        if box is not None:
            expressions.append({"expression_id": str(entry["id"]), "image_id": found[0], "phrase": entry["caption"],
                                "box": box})
    return expressions, checks.quarantine
