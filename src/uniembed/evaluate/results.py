"""Schemas of the evaluation artifacts: one row per (model tag, benchmark setting, dataset, task)."""
import pyarrow as pa

SCORES = pa.schema(
    [
        pa.field("tag", pa.string(), nullable=False),          # which model / stage produced it
        pa.field("benchmark", pa.string(), nullable=False),    # "mbeir" | "mmeb"
        pa.field("setting", pa.string(), nullable=False),      # "local" | "global" | "IND" | "OOD"
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("task_id", pa.int8()),                        # M-BEIR task; null for MMEB
        pa.field("meta_task", pa.string()),                    # MMEB meta-task; null for M-BEIR
        pa.field("metric", pa.string(), nullable=False),       # "Recall@5", "Recall@10", "P@1"
        pa.field("value", pa.float64(), nullable=False),       # percent, as the papers report
        pa.field("n_queries", pa.int64(), nullable=False),
    ]
)
