"""The world's zero-shot split: two-object scenes in the Karpathy-split and SugarCrepe formats, for the zero-shot
tables (UniME-V2 Table 2, U-MARVEL Table 8).

No training file holds these pictures or texts: every picture is a fresh rendering of two objects side by side (left
and right, or top and bottom), and every caption names both ("a small red circle on the left and a large blue
square on the right"), a sentence form the training captions never take. Like the papers' "unseen" sets built on
COCO images (U-MARVEL Appendix B), the objects themselves are the world's. Written::

    <root>/zeroshot/dataset_shapes2.json          Karpathy split: every image "test", two sentences (both orders)
    <root>/zeroshot/images/00000.png ...
    <root>/zeroshot/sugarcrepe/replace_att.json   one object's colour replaced by a colour no object has
    <root>/zeroshot/sugarcrepe/swap_att.json      the two objects' colours swapped
    <root>/zeroshot/sugarcrepe/add_obj.json       a third object added to the caption

(SugarCrepe's file names and hard-negative types: Hsieh et al. 2023; its entries name the same images, under
``zeroshot/images``, the source's ``image_root``.)
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from ...artifacts import write_json
from .world import COLORS, SHAPES, VALUES, ImageFolder, ShapeObject, caption, render_scene, seeded_rng

#: Positions two objects take without overlapping.
SIDE_BY_SIDE = (("left", "right"), ("top", "bottom"))


def _pair(rng) -> tuple[ShapeObject, ShapeObject]:
    """Two objects of different colours and shapes on opposite sides."""
    first_at, second_at = SIDE_BY_SIDE[int(rng.integers(len(SIDE_BY_SIDE)))]
    colors = rng.choice(len(COLORS), size=2, replace=False)
    shapes = rng.choice(len(SHAPES), size=2, replace=False)
    sizes = rng.integers(len(VALUES["size"]), size=2)
    return tuple(ShapeObject(SHAPES[int(shapes[i])], VALUES["color"][int(colors[i])], VALUES["size"][int(sizes[i])],
                             where) for i, where in enumerate((first_at, second_at)))


def _both(a: ShapeObject, b: ShapeObject) -> str:
    return f"{caption(a)} and {caption(b)}"


def _negatives(a: ShapeObject, b: ShapeObject, rng) -> dict[str, str]:
    """SugarCrepe's three attribute / object hard negatives of the caption of ``a`` and ``b``."""
    unused = [c for c in VALUES["color"] if c not in (a.color, b.color)]
    replaced = dataclasses.replace(a, color=unused[int(rng.integers(len(unused)))])
    extra = ShapeObject(SHAPES[int(rng.integers(len(SHAPES)))], unused[int(rng.integers(len(unused)))],
                        VALUES["size"][0], "center")
    return {"replace_att": _both(replaced, b),
            "swap_att": _both(dataclasses.replace(a, color=b.color), dataclasses.replace(b, color=a.color)),
            "add_obj": f"{_both(a, b)} and {caption(extra)}"}


def write_zeroshot(root: str | Path, *, seed: int, images: int) -> dict[str, int]:
    """Write ``images`` two-object scenes with their captions and hard negatives; return row and image counts."""
    rng = seeded_rng(seed, "zeroshot")
    base = Path(root) / "zeroshot"
    folder = ImageFolder(base, "images")
    karpathy, negatives = [], {kind: {} for kind in ("replace_att", "swap_att", "add_obj")}
    for i in range(images):
        a, b = _pair(rng)
        image, _ = render_scene([a, b], rng)
        filename = Path(folder.add(image)).name
        sentences = [_both(a, b), _both(b, a)]
        karpathy.append({"filepath": "images", "filename": filename, "imgid": i, "split": "test",
                         "sentids": [2 * i, 2 * i + 1],
                         "sentences": [{"raw": s, "sentid": 2 * i + j, "imgid": i, "tokens": s.split()}
                                       for j, s in enumerate(sentences)]})
        for kind, negative in _negatives(a, b, rng).items():
            negatives[kind][str(i)] = {"filename": filename, "caption": sentences[0],
                                       "negative_caption": negative}
    write_json({"dataset": "shapes2", "images": karpathy}, base / "dataset_shapes2.json")
    for kind, entries in negatives.items():
        write_json(entries, base / "sugarcrepe" / f"{kind}.json")
    return {"zeroshot/dataset_shapes2.json": images, "zeroshot/images/": folder.count,
            **{f"zeroshot/sugarcrepe/{kind}.json": images for kind in negatives}}
