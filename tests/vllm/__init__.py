"""The `vllm` tier: the judge on a real vLLM engine and a real OpenAI-compatible vLLM server (CPU).

Runs with the interpreter of the vLLM env (``bash scripts/setup_vllm_cpu.sh`` makes ``.venv-vllm``).
Under the project env, ``test_tier.py`` runs this tier through that interpreter (and fails when the
env is missing); under the vLLM env, the tier's own tests run. See ``conftest.py``.
"""
