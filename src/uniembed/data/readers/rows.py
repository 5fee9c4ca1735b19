"""Row iteration over Parquet or JSON-lines files with the same structural checks for both."""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import SourceFormatError
from ..jsonl import FieldSpec, check_fields, iter_json_lines

_ARROW_KIND = {str: (pa.types.is_string, pa.types.is_large_string), list: (pa.types.is_list, pa.types.is_large_list)}


def iter_rows(path: Path, spec: FieldSpec, optional: FieldSpec | None = None) -> Iterator[tuple[int, dict]]:
    """Yield ``(row_number, row)`` (1-based; the line number for JSON lines) after checking ``spec``.

    Fields in ``optional`` are checked when present and set to None when absent.
    """
    optional = optional or {}
    if path.suffix == ".parquet":
        try:
            file = pq.ParquetFile(path)
        except Exception as exc:
            raise SourceFormatError(path, None, "a readable Parquet file", str(exc)) from exc
        schema = file.schema_arrow
        for name, (types, _) in {**spec, **optional}.items():
            if name not in schema.names:
                if name in optional:
                    continue
                raise SourceFormatError(path, None, f"column {name!r}", f"columns {schema.names}")
            kind = schema.field(name).type
            if not any(test(kind) for t in types for test in _ARROW_KIND.get(t, ())):
                raise SourceFormatError(path, None, f"column {name!r} of type {[t.__name__ for t in types]}", str(kind))
        columns = [n for n in {**spec, **optional} if n in schema.names]
        row_no = 0
        for batch in file.iter_batches(columns=columns, batch_size=8192):
            for row in batch.to_pylist():
                row_no += 1
                for name, (_, nullable) in spec.items():
                    if row[name] is None and not nullable:
                        raise SourceFormatError(path, row_no, f"{name!r} to be non-null", "null")
                yield row_no, {**{n: None for n in optional}, **row}
        return
    for line, obj in iter_json_lines(path):
        check_fields(obj, spec, path, line)
        present = {n: s for n, s in optional.items() if n in obj}
        check_fields(obj, present, path, line)
        yield line, {**{n: None for n in optional}, **obj}


def data_files(directory: Path) -> list[Path]:
    """The Parquet and JSON-lines files of a directory, sorted."""
    return sorted(p for p in directory.glob("*") if p.suffix in (".parquet", ".jsonl"))
