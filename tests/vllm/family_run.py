"""A tiny model of one family scored by a vLLM offline engine on the first judge pairs of a mined table, written as
JSON (the `vllm` tier runs this as a script, one process per family: the engine and its memory end with it).

    python -m tests.vllm.family_run MODEL CURATED_DIR MINED.parquet PAIRS OUT.json
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from uniembed.judge.engine import engine_env, engine_settings, llm_kwargs

ENGINE = {"dtype": "float32", "enforce_eager": True, "cpu_kvcache_space": 1}


def main(model: str, curated: str, mined: str, pairs: str, out_path: str) -> None:
    from uniembed.judge.pairs import build_judge_pairs
    from uniembed.judge.vllm_backend import VllmOfflineJudge

    chosen = build_judge_pairs(Path(curated) / "queries.parquet", Path(curated) / "candidates.parquet", mined)[:int(pairs)]
    engine = engine_settings(ENGINE)
    judge = VllmOfflineJudge(model, engine_env=engine_env(engine), **llm_kwargs(engine))
    results = [{"query_id": p.query_id, "candidate_id": p.candidate_id, "status": r.status, "score": r.score,
                "error": r.error} for p, r in zip(chosen, judge.score(chosen))]
    Path(out_path).write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:6])
