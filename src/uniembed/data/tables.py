"""Column-wise builders for the curated tables (no per-row dicts kept: millions of rows fit)."""
from __future__ import annotations

from typing import Any

import pyarrow as pa


class TableBuilder:
    """Accumulate rows of ``schema`` column by column, then build one typed pyarrow table."""

    def __init__(self, schema: pa.Schema):
        self.schema = schema
        self.columns: dict[str, list[Any]] = {name: [] for name in schema.names}

    def append(self, **row: Any) -> None:
        for name, column in self.columns.items():
            column.append(row.get(name))

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()), []))

    def to_table(self, keep: list[bool] | None = None) -> pa.Table:
        columns = self.columns
        if keep is not None:
            columns = {n: [v for v, k in zip(c, keep) if k] for n, c in columns.items()}
        return pa.table({n: pa.array(c, type=self.schema.field(n).type) for n, c in columns.items()},
                        schema=self.schema)
