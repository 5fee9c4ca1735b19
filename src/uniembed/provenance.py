"""What produced an artifact: the code version of a stage, for resume keys and run manifests.

Every resumable artifact (embedding cache, judge shards, training checkpoints) is keyed by
everything that determines it; the code is one of those things. :func:`code_version` digests the
source of the modules a stage runs, so a fix to a loss, a reader or a scorer makes the old
partial results unusable instead of silently reused.
"""
from __future__ import annotations

import hashlib
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path


@lru_cache(maxsize=None)
def code_version(*modules: str) -> str:
    """sha256 (16 hex digits) over the source files of ``modules`` (packages include every ``.py`` below them).

    Names are relative to the ``uniembed`` package (``"train"``, ``"model.loading"``) or absolute.
    """
    if not modules:
        raise ValueError("code_version needs at least one module name")
    digest = hashlib.sha256()
    for name in sorted(set(modules)):
        spec = find_spec(name if name.startswith("uniembed") else f"uniembed.{name}")   # found, not imported
        if spec is None or spec.origin is None:
            raise ModuleNotFoundError(f"code_version: no module {name!r}")
        origin = Path(spec.origin)
        files = sorted(origin.parent.rglob("*.py")) if origin.name == "__init__.py" else [origin]
        for path in files:
            digest.update(str(path.relative_to(origin.parent.parent if origin.name == "__init__.py" else origin.parent)).encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()[:16]
