"""MLLM-as-a-Judge scoring of mined query-candidate pairs (UniME-V2, "MLLM-as-a-Judge for Hard Negatives Mining").

``prompt`` (the paper's Yes/No instruction), ``pairs`` (what is scored), ``scoring`` (the backend
interface and sharded, resumable scoring to ``judge_scores.parquet``), ``resume`` (the resume key
and shard verification), ``failures`` (failed pairs by kind, ``max_failed_fraction``), and the
backends: ``transformers_backend`` (any machine), ``vllm_backend`` (offline engine) and
``vllm_client`` (``vllm serve`` over HTTP). The vLLM modules import vllm only when an engine is built.
"""
from .pairs import JudgePair, build_judge_pairs, check_pair_images, pairs_digest
from .prompt import JUDGE_INSTRUCTION, PROMPT_VERSION, build_judge_prompt, prompt_hash
from .scoring import JudgeBackend, JudgeResult, score_pairs, shard_pairs

__all__ = [
    "JUDGE_INSTRUCTION", "PROMPT_VERSION", "JudgeBackend", "JudgePair", "JudgeResult",
    "build_judge_pairs", "build_judge_prompt", "check_pair_images", "pairs_digest", "prompt_hash",
    "score_pairs", "shard_pairs",
]
