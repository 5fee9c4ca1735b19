"""Small UniME-V2 judged files in the released layout (GaryGuTC/UniME-v2 data/example_data.json),
with real tiny PNG images written under an image root."""
from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

IMG = "<|image_1|>"
COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200),
          (120, 120, 120), (250, 250, 250), (10, 10, 10), (90, 160, 40), (160, 40, 90), (40, 90, 160)]


def png(root: Path, rel: str, color) -> str:
    """Write a 56x56 PNG (the tiny model's smallest image) at ``root/rel``; return ``rel``."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (56, 56), color).save(path)
    return rel


def record(query_text, query_image, pos_text, pos_image, pos_score, negatives, scores) -> dict:
    return {"query_text": query_text, "query_image": query_image, "pos_text": pos_text, "pos_image": pos_image,
            "query_pos_scores": pos_score, "hard_negatives": [list(n) for n in negatives],
            "hard_negatives_scores": list(scores)}


def good_records(root: Path, n: int = 6) -> list[dict]:
    """``n`` well-formed records cycling through the released file's three shapes: VQA (image query, text
    answers), VisDial (text query, image targets) and CIRR (image + text query, image targets)."""
    images = [png(root, f"images/Train/img_{i}.png", c) for i, c in enumerate(COLORS)]
    out = []
    for i in range(n):
        a, b, c, d = (images[(i + k) % len(images)] for k in range(4))
        if i % 3 == 0:
            out.append(record(f"{IMG}\nRepresent the given image with the following question: What color is item {i}?\n",
                              a, f"colour {i}", "", 0.9, [(f"colour {i + 1}", ""), (f"shape {i}", ""), ("no", "")],
                              [0.25, 0.5, 0.01]))
        elif i % 3 == 1:
            out.append(record(f"Represent the given dialogue about an image, which is used for image retrieval: "
                              f"Q:what is shown\nA:patch {i}\n\n", "", f"{IMG}\nRepresent the given image\n", a, 0.75,
                              [(f"{IMG}\nRepresent the given image\n", x) for x in (b, c, d)], [0.5, 0.125, 0.0625]))
        else:
            out.append(record(f"{IMG}\nGiven an image, find a similar everyday image with the described changes: "
                              f"make it brighter {i}.\n", a, f"{IMG}\nRepresent the given image.\n", b, 1.0,
                              [(f"{IMG}\nRepresent the given image.\n", x) for x in (c, d, a)], [1.0, 0.375, 0.0]))
    return out


def write_json(path: Path, data) -> Path:
    path.write_text(json.dumps(data, indent=4))
    return path
