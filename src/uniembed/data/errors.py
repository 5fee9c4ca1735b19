"""The error a structurally wrong source raises: it names the file, the line and the expectation."""
from __future__ import annotations

import os


class SourceFormatError(ValueError):
    """A source file whose structure is wrong (missing field, wrong type, unreadable line).

    Such a file stops curation: unlike a bad *value* (quarantined), a bad *structure* means the
    reader and the file disagree about the format, and no row of it can be trusted.
    """

    def __init__(self, path: str | os.PathLike, line: int | None, expected: str, found: str = ""):
        self.path, self.line, self.expected, self.found = str(path), line, expected, found
        where = f"{self.path}:{line}" if line is not None else self.path
        message = f"{where}: expected {expected}"
        if found:
            message += f"; found {found}"
        super().__init__(message)
