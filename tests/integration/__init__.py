"""End-to-end tests of the workflow on the embedded default; :func:`mbeir_averages` reads one model's scores."""
from pathlib import Path

from uniembed.artifacts import read_parquet
from uniembed.evaluate.results import SCORES


def mbeir_averages(run_dir: Path, tag: str) -> dict:
    """M-BEIR local / global Recall@5 averages (7 tasks each) of one evaluated model of ``run_dir``."""
    rows = read_parquet(Path(run_dir) / "eval" / tag / "scores.parquet", SCORES).to_pylist()
    return {s: sum(r["value"] for r in rows if r["benchmark"] == "mbeir" and r["setting"] == s) / 7
            for s in ("local", "global")}
