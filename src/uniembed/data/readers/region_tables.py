"""Canonical region tables (ObjEmbed, seed 002 §3.2, §4) written from :mod:`.regions`' records, as Parquet with
explicit schemas::

    images.parquet         one row per training image: its path, size, two captions and proposals
    objects.parquet        one row per (image, object or referring expression): phrase and box
    local_queries.parquet  one row per local-retrieval query: text, image, boxes
    quarantine.parquet     every rejected record, object or proposal with its reason

Boxes are float32 [x1, y1, x2, y2] in pixels (``BOX``). A row missing a required column, or a box that is not four
numbers, raises a ValueError naming the table, the row and the column.
"""
from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ...artifacts import atomic_path

BOX = pa.list_(pa.float32(), 4)

REGION_IMAGES_SCHEMA = pa.schema([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("image_path", pa.string(), nullable=False),
    pa.field("width", pa.int32(), nullable=False),
    pa.field("height", pa.int32(), nullable=False),
    pa.field("short_caption", pa.string()),
    pa.field("long_caption", pa.string()),
    pa.field("proposals", pa.list_(BOX), nullable=False),
    pa.field("local_gallery", pa.bool_()),   # evaluation: one of the local-retrieval file's images (its gallery)
])

REGION_OBJECTS_SCHEMA = pa.schema([
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("object_id", pa.string(), nullable=False),
    pa.field("phrase", pa.string(), nullable=False),
    pa.field("box", BOX, nullable=False),
    pa.field("kind", pa.string()),   # phrase (unique in its image: a referring expression) | category (a detection label)
])

LOCAL_QUERIES_SCHEMA = pa.schema([
    pa.field("query_id", pa.string(), nullable=False),
    pa.field("text", pa.string(), nullable=False),
    pa.field("image_id", pa.string(), nullable=False),
    pa.field("box", BOX),                                  # the one box; null with none or several
    pa.field("boxes", pa.list_(BOX), nullable=False),
])

QUARANTINE_SCHEMA = pa.schema([
    pa.field("file", pa.string(), nullable=False),
    pa.field("record", pa.string(), nullable=False),
    pa.field("key", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("value", pa.string()),
])


def object_rows(records: list[dict]) -> list[dict]:
    """Rows of ``objects.parquet`` from training images (their objects), grounding expressions (one each, the
    expression id as object id) or object rows."""
    rows = []
    for record in records:
        if "objects" in record:
            rows += [{"image_id": record["image_id"], **o} for o in record["objects"]]
        else:
            rows.append({"image_id": record.get("image_id"), "phrase": record.get("phrase"), "box": record.get("box"),
                         "object_id": record.get("object_id", record.get("expression_id")), "kind": record.get("kind")})
    return rows


def region_table(rows: list[dict], schema: pa.Schema, name: str) -> pa.Table:
    """``rows`` as a table of ``schema``; a missing required value raises a ValueError naming table, row, column."""
    columns = {}
    for f in schema:
        values = []
        for i, row in enumerate(rows):
            value = row.get(f.name)
            if value is None and not f.nullable:
                raise ValueError(f"{name}: row {i} has no value for the required column {f.name!r}")
            values.append(value)
        try:
            columns[f.name] = pa.array(values, type=f.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise ValueError(f"{name}: column {f.name!r} does not fit {f.type}: {exc}") from exc
    return pa.table(columns, schema=schema)


def write_region_tables(out_dir: str | os.PathLike, *, images: list[dict] | None = None,
                        objects: list[dict] | None = None, queries: list[dict] | None = None,
                        quarantine: list[dict]) -> dict[str, int]:
    """Write the tables given (``objects``: training images or expressions, see :func:`object_rows`) and the
    quarantine under ``out_dir``; return rows per file."""
    tables = {"images.parquet": (images, REGION_IMAGES_SCHEMA),
              "objects.parquet": (None if objects is None else object_rows(objects), REGION_OBJECTS_SCHEMA),
              "local_queries.parquet": (queries, LOCAL_QUERIES_SCHEMA),
              "quarantine.parquet": (quarantine, QUARANTINE_SCHEMA)}
    built = {name: region_table(rows, schema, name) for name, (rows, schema) in tables.items() if rows is not None}
    counts = {}
    for name, table in built.items():   # every table is built before any file is written
        with atomic_path(Path(out_dir) / name) as tmp:
            pq.write_table(table, tmp)
        counts[name] = table.num_rows
    return counts
