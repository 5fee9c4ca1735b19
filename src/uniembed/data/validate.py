"""Validation rules of curation (docs/curation.md); each returns a quarantine ``(reason, detail)`` or None.

Rules on a single record live here as pure functions; rules across records (duplicate ids,
references to the pool) work on whole columns. Reasons are stable snake_case codes that the
summary counts and tests assert.
"""
from __future__ import annotations

from typing import Callable, Hashable, Iterable, Sequence

from .schemas import MODALITIES, TASKS

Problem = tuple[str, str]


def normalize_modality(modality: str) -> str:
    """``"text,image"`` and ``"image, text"`` (both spellings occur in M-BEIR docs) -> ``"image,text"``."""
    return ",".join(sorted(part.strip() for part in modality.split(",")))


def modality_problem(modality: str, text: str | None, image_path: str | None) -> Problem | None:
    """The modality must agree with the fields present: text iff 'text' in it, image iff 'image'."""
    if modality not in MODALITIES:
        return "unknown_modality", f"{modality!r}; expected one of {list(MODALITIES)}"
    parts = modality.split(",")
    has_text, has_image = bool(text and text.strip()), bool(image_path)
    if "text" in parts and not has_text:
        return "empty_text", f"modality {modality!r} needs non-empty text"
    if "image" in parts and not has_image:
        return "modality_mismatch", f"modality {modality!r} but no image path"
    if "image" not in parts and has_image:
        return "modality_mismatch", f"modality {modality!r} but an image path {image_path!r}"
    if "text" not in parts and has_text:
        return "modality_mismatch", f"modality {modality!r} but text {text[:40]!r}"
    return None


def task_problem(task_id: int, query_modality: str) -> Problem | None:
    """The task id must be a known M-BEIR task whose query modality matches the record's."""
    if task_id not in TASKS:
        return "unknown_task_id", f"task_id {task_id}; expected one of {sorted(TASKS)}"
    expected = TASKS[task_id][0]
    if query_modality != expected:
        return "modality_mismatch", f"task {task_id} expects query modality {expected!r}, got {query_modality!r}"
    return None


def duplicate_verdicts(
    ids: Sequence[str],
    contents: Iterable[Hashable],
    groups: Sequence[Hashable] | None = None,
    counted: Sequence[bool] | None = None,
    where: Callable[[int], str] | None = None,
) -> list[Problem | None]:
    """Per row: None to keep, or why it is quarantined.

    * the same id with different content anywhere -> every occurrence is ``conflicting_duplicate_id``
      (no way to know which is right);
    * the same id and content again within one group (pool) -> later ones are ``exact_duplicate``;
    * the same id and content in different groups is pool membership, not a duplicate;
    * rows with ``counted`` False (derived records, e.g. MMEB targets) merge silently.
    """
    first: dict[str, int] = {}  # id -> hash of its first content (memory: one int per id)
    conflicts: set[str] = set()
    for rid, content in zip(ids, contents):
        if first.setdefault(rid, hash(content)) != hash(content):
            conflicts.add(rid)
    del first
    seen: dict[tuple, int] = {}
    verdicts: list[Problem | None] = []
    for i, rid in enumerate(ids):
        if rid in conflicts:
            verdicts.append(("conflicting_duplicate_id", f"id {rid!r} occurs with different content"))
            continue
        key = (groups[i] if groups is not None else None, rid)
        if key in seen and (counted is None or counted[i]):
            origin = where(seen[key]) if where is not None else f"row {seen[key]}"
            verdicts.append(("exact_duplicate", f"id {rid!r} repeats {origin}"))
            continue
        seen.setdefault(key, i)
        verdicts.append(None)
    return verdicts


def reference_problem(
    query_pool: str | None,
    refs: dict[str, Sequence[str]],
    pool_members: dict[str, set[str]],
    known: set[str],
    bad: dict[str, Problem],
    rejected_at_read: dict[str, Problem] | None = None,
) -> Problem | None:
    """Positives, negatives and per-query candidates must be kept candidates of the query's pool.

    A reference to a candidate that was quarantined (while reading or across records) is
    ``references_quarantined_candidate`` naming the candidate and its reason; only a reference to
    an id no record of the pool carries is ``<kind>_not_in_pool``.
    """
    rejected_at_read = rejected_at_read or {}
    members = pool_members.get(query_pool) if query_pool is not None else None
    for kind, ids in refs.items():
        for cid in ids:
            if cid in bad:
                reason, detail = bad[cid]
                return "references_quarantined_candidate", f"{kind} {cid!r} was quarantined: {reason} ({detail})"
            missing = cid not in known or (members is not None and cid not in members)
            if missing and cid in rejected_at_read:
                reason, detail = rejected_at_read[cid]
                return "references_quarantined_candidate", f"{kind} {cid!r} was quarantined: {reason} ({detail})"
            if cid not in known:
                return f"{kind}_not_in_pool", f"{kind} {cid!r} is in no candidate pool of this source"
            if members is not None and cid not in members:
                return f"{kind}_not_in_pool", f"{kind} {cid!r} is not in pool {query_pool!r}"
    return None
