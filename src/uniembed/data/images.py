"""Parallel image validation: each referenced image must exist and fully decode."""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from typing import Iterable

from PIL import Image
from tqdm import tqdm

MISSING_IMAGE, CORRUPT_IMAGE = "missing_image", "corrupt_image"


def check_image(path: str) -> tuple[str, str] | None:
    """Return None for a decodable image, else ``(reason, detail)``."""
    if not os.path.isfile(path):
        return MISSING_IMAGE, path
    try:
        with Image.open(path) as image:
            image.load()  # decode every pixel: verify() alone misses truncated data
    except Exception as exc:  # PIL raises many types for bad bytes
        return CORRUPT_IMAGE, f"{path}: {type(exc).__name__}: {exc}"
    return None


def check_images(paths: Iterable[str], workers: int = 1, progress: bool = True) -> dict[str, tuple[str, str]]:
    """Check unique ``paths`` with ``workers`` processes; return only the failures by path."""
    unique = sorted(set(paths))
    bar = dict(total=len(unique), desc="check images", unit="img", disable=not progress, mininterval=1.0)
    if workers <= 1 or len(unique) < 64:
        results = map(check_image, unique)
        return {p: r for p, r in zip(unique, tqdm(results, **bar)) if r is not None}
    chunk = max(16, len(unique) // (workers * 32))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        results = pool.map(check_image, unique, chunksize=chunk)
        return {p: r for p, r in zip(unique, tqdm(results, **bar)) if r is not None}
