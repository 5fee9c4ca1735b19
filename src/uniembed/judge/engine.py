"""vLLM engine settings of the judge (``recipe.judge.engine``), for both vLLM backends.

One section, three renderings: keywords of ``vllm.LLM`` (``vllm_offline``), flags of the
OpenAI-compatible server (``vllm_server``), and environment variables of the engine process.
A null setting is not passed on, so vLLM's own default applies (today's behaviour)::

    dtype: float32              -> LLM(dtype="float32")              / --dtype float32
    max_model_len: 4096         -> LLM(max_model_len=4096)           / --max-model-len 4096
    tensor_parallel_size: 2     -> LLM(tensor_parallel_size=2)       / --tensor-parallel-size 2
    gpu_memory_utilization: 0.5 -> LLM(gpu_memory_utilization=0.5)   / --gpu-memory-utilization 0.5
    enforce_eager: true         -> LLM(enforce_eager=True)           / --enforce-eager
    cpu_kvcache_space: 1        -> VLLM_CPU_KVCACHE_SPACE=1 (GiB of KV cache, vLLM on CPU)

On CPU, ``gpu_memory_utilization`` is the fraction of the machine's RAM vLLM reserves; its default
(0.92) is refused at start on a machine with other processes. ``cpu_kvcache_space`` sets the KV
cache size directly and lifts that check. ``enforce_eager`` skips graph compilation (an engine
starts in ~35 s instead of ~90 s on 2 CPU cores). Which settings can change a score (and so go into
the judge's resume key) is :func:`score_settings`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
from dataclasses import dataclass
from typing import Annotated, Any, Iterator, Mapping, Optional

from ..config_check import check
from ..ranges import Range


@dataclass
class JudgeEngine:
    """vLLM engine settings of the judge (``uniembed.judge.engine``); null = vLLM's own default."""

    dtype: Optional[str] = None  # float32 | bfloat16 | float16 | auto
    max_model_len: Optional[Annotated[int, Range(ge=1)]] = None  # the engine's context length
    tensor_parallel_size: Optional[Annotated[int, Range(ge=1)]] = None  # GPUs one engine spans
    gpu_memory_utilization: Optional[Annotated[float, Range(gt=0, le=1)]] = None  # on CPU: the share of RAM it reserves
    enforce_eager: bool = False  # no graph compilation (faster start, slower steps)
    cpu_kvcache_space: Optional[Annotated[int, Range(ge=1)]] = None  # GiB of KV cache on CPU (VLLM_CPU_KVCACHE_SPACE)


CONFIG_KEY = "recipe.judge.engine"
#: settings that change throughput or memory, never a score (left out of the resume key)
THROUGHPUT_ONLY = frozenset({"gpu_memory_utilization", "cpu_kvcache_space"})
_ENV = {"cpu_kvcache_space": "VLLM_CPU_KVCACHE_SPACE"}


def engine_settings(section: Mapping[str, Any] | JudgeEngine | None) -> JudgeEngine:
    """``recipe.judge.engine`` (a mapping, or None for all defaults) as a checked :class:`JudgeEngine`."""
    if isinstance(section, JudgeEngine):
        return section
    values = dict(section or {})
    check(values, JudgeEngine, CONFIG_KEY)   # types and the ranges JudgeEngine declares
    return JudgeEngine(**values)


def _set(engine: JudgeEngine) -> dict[str, Any]:
    """The settings that differ from vLLM's defaults (null, or ``enforce_eager`` false, are left out)."""
    return {f.name: getattr(engine, f.name) for f in dataclasses.fields(engine)
            if getattr(engine, f.name) not in (None, False)}


def llm_kwargs(engine: JudgeEngine) -> dict[str, Any]:
    """Keywords of ``vllm.LLM``."""
    return {name: value for name, value in _set(engine).items() if name not in _ENV}


def server_args(engine: JudgeEngine) -> list[str]:
    """Flags of ``vllm serve`` / ``python -m vllm.entrypoints.openai.api_server``."""
    args: list[str] = []
    for name, value in llm_kwargs(engine).items():
        flag = "--" + name.replace("_", "-")
        args += [flag] if value is True else [flag, str(value)]
    return args


def engine_env(engine: JudgeEngine) -> dict[str, str]:
    """Environment variables of the engine process (``VLLM_CPU_KVCACHE_SPACE``)."""
    return {_ENV[name]: str(value) for name, value in _set(engine).items() if name in _ENV}


def score_settings(engine: JudgeEngine) -> dict[str, Any]:
    """The settings that can change a score (dtype, parallelism, eager mode, context length): resume key."""
    return {name: value for name, value in _set(engine).items() if name not in THROUGHPUT_ONLY}


@contextlib.contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` updated with ``variables`` for the block (the engine process inherits them), then restored."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
