"""MLLM-as-a-Judge scoring of mined query-candidate pairs (UniME-V2, "MLLM-as-a-Judge for Hard Negatives Mining").

``prompt`` (the paper's Yes/No instruction), ``pairs`` (what is scored), ``scoring`` (the backend
interface and sharded, resumable scoring to ``judge_scores.parquet``), ``resume`` (the resume key
and shard verification), ``failures`` (failed pairs by kind, ``max_failed_fraction``), and the
backends: ``transformers_backend`` (any machine), ``vllm_backend`` (offline engine) and
``vllm_client`` (``vllm serve`` over HTTP). The vLLM modules import vllm only when an engine is built.
Import the modules themselves (the package imports nothing, so ``uniembed.judge.engine``'s settings stay light
for the config schema).
"""
