"""Line-oriented JSON reading with structural checks that name the file, the line and the expectation."""
from __future__ import annotations

import json
import os
from typing import Iterator, Mapping

from .errors import SourceFormatError

#: field name -> (accepted python types, nullable). ``list`` fields must hold strings.
FieldSpec = Mapping[str, tuple[tuple[type, ...], bool]]

_TYPE_NAMES = {str: "string", int: "integer", list: "list of strings", float: "number"}


def iter_json_lines(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield ``(line_number, object)`` for each non-blank line; a bad line raises SourceFormatError.

    A truncated last line (an interrupted download) is a structural error, never skipped.
    """
    try:
        handle = open(path, "rb")
    except OSError as exc:
        raise SourceFormatError(path, None, "a readable JSON-lines file", str(exc)) from exc
    with handle:
        for line_no, raw in enumerate(handle, 1):
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                snippet = raw[:80].decode("utf-8", "replace").rstrip()
                raise SourceFormatError(
                    path, line_no, "one complete JSON object per line", f"{exc} in {snippet!r}"
                ) from exc
            if not isinstance(obj, dict):
                raise SourceFormatError(path, line_no, "a JSON object", type(obj).__name__)
            yield line_no, obj


def check_fields(obj: Mapping, spec: FieldSpec, path: str | os.PathLike, line: int) -> None:
    """Raise SourceFormatError unless every field of ``spec`` is present with an accepted type."""
    for name, (types, nullable) in spec.items():
        if name not in obj:
            raise SourceFormatError(path, line, f"required field {name!r}", f"fields {sorted(obj)}")
        value = obj[name]
        if value is None:
            if nullable:
                continue
            raise SourceFormatError(path, line, f"{name!r} to be non-null", "null")
        if isinstance(value, bool) or not isinstance(value, types):
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            raise SourceFormatError(
                path, line, f"{name!r} of type {wanted}", f"{type(value).__name__} {value!r:.60}"
            )
        if isinstance(value, list) and not all(isinstance(v, str) for v in value):
            raise SourceFormatError(path, line, f"{name!r} to be a list of strings", repr(value)[:80])
