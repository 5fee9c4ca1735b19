"""Readers of the long-caption retrieval sets of UniME-V2 Table 2 (ShareGPT4V, Urban1K), in their public formats.

**ShareGPT4V** (Chen et al. 2023; ``share-captioner_coco_lcs_sam_1246k_1107.json``, images under ShareGPT4V's
``data/`` folder)::

    [{"id": "000000000009", "image": "coco/train2017/000000000009.jpg",
      "conversations": [{"from": "human", "value": "<image>\\nWhat is in the photo?"},
                        {"from": "gpt", "value": "The image shows a lunch box ...\\n\\nIn the top left ..."}]}, ...]

The test set is the file's first 1000 entries (``limit``), as in Long-CLIP's retrieval evaluation (Zhang et al. 2024,
``share4v_val_dataset``: ``json.load(fp)[:1000]``); the entries after them are not read, and ``notes`` says how many.
An entry's caption is its first ``"gpt"`` turn with its line breaks made spaces (Long-CLIP:
``caption.replace("\\n", " ")``); an entry without one is an ``empty_text`` caption.

**Urban1K** (Zhang et al. 2024, Long-CLIP; huggingface.co/datasets/BeichenZhang/Urban1k)::

    Urban1k/image/1.jpg ... Urban1k/image/1000.jpg
    Urban1k/caption/1.txt ... Urban1k/caption/1000.txt      one long caption, on the file's first line

An image and a caption pair by their file stem; the caption is the file's first line (Long-CLIP
``eval/retrieval/Urban1k.py``: ``f.readlines()[0]``; ``notes`` counts files with more lines). A caption without an
image, an image without a caption, or a stem with two files is a quarantine row. Files whose names start with ``.``
are not records. Records are numbered in stem order (numeric stems by value) and their ``source_file`` is the
Urban1K folder.

Both give one image per caption and the Karpathy-split tasks (:mod:`.zeroshot`): every caption finds its image among
the set's images (t2i, task 0) and every image its caption among the set's captions (i2t, task 3), Recall@1/5/10.
A structural error (unreadable JSON, a missing key, a wrong type, a missing folder, a caption that is not UTF-8)
is a ``SourceFormatError`` naming the file and the record; an image outside ``image_root`` or an empty caption is a
quarantine row; a missing or undecodable image file is quarantined by curation's image check.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..curate import SourceRecords
from ..errors import SourceFormatError
from ..paths import RootedPaths
from ..validate import Problem
from .retrieval import add_image_with_captions, field, load_json_list

SHAREGPT4V_TEST_ENTRIES = 1000


def _first_gpt_turn(conversations: list, path: Path, number: int) -> str | None:
    """The value of the first ``"gpt"`` turn (every turn is checked for ``from`` and ``value``)."""
    caption = None
    for turn in conversations:
        speaker = field(turn, "from", str, path, number, "each turn's ")
        value = field(turn, "value", str, path, number, "each turn's ")
        if speaker == "gpt" and caption is None:
            caption = value
    return caption


def read_sharegpt4v(name: str, path: str | os.PathLike, image_root: str | os.PathLike | None = None,
                    limit: int | None = SHAREGPT4V_TEST_ENTRIES, split: str = "test",
                    dataset: str | None = None) -> SourceRecords:
    """The first ``limit`` entries (all if None): each image and its long caption as t2i and i2t queries."""
    path = Path(path)
    entries = load_json_list(path, "a ShareGPT4V JSON list of entries")
    dataset = dataset or "sharegpt4v"
    paths = RootedPaths(Path(image_root) if image_root else path.parent)
    records = SourceRecords(name)
    records.datasets.append(dataset=dataset, source=name)
    read = entries if limit is None else entries[:limit]
    records.notes["entries_not_read"] = len(entries) - len(read)
    for number, entry in enumerate(read, start=1):
        key = field(entry, "id", (str, int), path, number)
        image = field(entry, "image", str, path, number)
        caption = _first_gpt_turn(field(entry, "conversations", list, path, number), path, number)
        text = caption.replace("\n", " ").strip() if caption is not None else None
        add_image_with_captions(records, paths, dataset, split, path, number, f"{dataset}:image:{key}", image,
                                [(f"{dataset}:caption:{key}", text, caption)])
    return records


def _files_by_stem(folder: Path) -> dict[str, list[str]]:
    if not folder.is_dir():
        raise SourceFormatError(folder, None, f"the Urban1K {folder.name}/ folder", "no such folder")
    stems: dict[str, list[str]] = {}
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if not entry.name.startswith("."):
            stems.setdefault(Path(entry.name).stem, []).append(entry.name)
    return stems


def _stem_order(stem: str) -> tuple:
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def _pair_problem(stem: str, images: list[str], captions: list[str]) -> Problem | None:
    if not images:
        return "missing_image", f"caption/{captions[0]} has no image/{stem}.*"
    if not captions:
        return "missing_caption", f"image/{images[0]} has no caption/{stem}.txt"
    if len(images) > 1 or len(captions) > 1:
        return "conflicting_duplicate_id", f"the stem {stem!r} names several files: {images + captions}"
    return None


def _read_caption(path: Path) -> tuple[str, str]:
    """(the first line, stripped; the whole file)."""
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceFormatError(path, 1, "a readable UTF-8 caption file", str(exc)) from exc
    return (content.splitlines() or [""])[0].strip(), content


def read_urban1k(name: str, root: str | os.PathLike, split: str = "test", dataset: str | None = None) -> SourceRecords:
    """Each ``image/<n>.*`` and ``caption/<n>.txt`` pair as t2i and i2t queries over the set's two pools."""
    root = Path(root)
    dataset = dataset or "urban1k"
    images, captions = _files_by_stem(root / "image"), _files_by_stem(root / "caption")
    paths = RootedPaths(root)
    records = SourceRecords(name)
    records.datasets.append(dataset=dataset, source=name)
    more_lines = 0
    for number, stem in enumerate(sorted(set(images) | set(captions), key=_stem_order), start=1):
        image_files, caption_files = images.get(stem, []), captions.get(stem, [])
        problem = _pair_problem(stem, image_files, caption_files)
        if problem:
            records.rows_in[str(root)] += 1
            records.reject("candidates", f"{dataset}:{stem}", root, number, problem)
            continue
        text, content = _read_caption(root / "caption" / caption_files[0])
        more_lines += content.strip() != text
        add_image_with_captions(records, paths, dataset, split, root, number, f"{dataset}:image:{stem}",
                                f"image/{image_files[0]}", [(f"{dataset}:caption:{stem}", text, content)])
    records.notes["caption_files_with_more_lines"] = more_lines
    return records
