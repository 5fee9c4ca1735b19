"""The offline vLLM judge backend, and the logprobs -> score rule shared with the HTTP client.

UniME-V2 ("MLLM-as-a-Judge for Hard Negatives Mining") scores a pair with
s = e_y / (e_y + e_n). vLLM returns log-probabilities, not logits; both share the softmax
denominator, so s = 1 / (1 + exp(lp_no - lp_yes)) is the same number. Each prompt generates one
token with ``SamplingParams(max_tokens=1, temperature=0, logprob_token_ids=[yes, no])``: vLLM
(>= 0.32) returns the logprobs of exactly those two ids, wherever they rank. An older vLLM
without ``logprob_token_ids`` gets ``logprobs=K`` and "Yes"/"No" are read from the top-K (the
engine's ``max_logprobs`` is raised to K); when either is not there the pair is a ``failed``
result (raise K), never a score of 0. ``allowed_token_ids`` is not used: vLLM computes the
returned logprobs before that whitelist. Tokens are matched by id, never by decoded text.

Offline output shape (``vllm.LLM.generate``): ``outputs[i].outputs[0].logprobs[0]`` is a dict
``{token_id: Logprob(logprob, rank, decoded_token)}`` for the generated position.

vLLM is imported only when :class:`VllmOfflineJudge` is built. The engine starts in a new process
(spawned), so a script that builds one needs an ``if __name__ == "__main__":`` guard. Install: the
``gpu-judge`` extra / ``envs/judge.yaml`` on CUDA machines, ``scripts/setup_vllm_cpu.sh`` on CPU.
"""
from __future__ import annotations

import math
from typing import Any, Hashable, Mapping, Sequence

from PIL import Image

from .engine import environment
from .pairs import JudgePair
from ..model.chat import NO, YES, ChatPrompt, yes_no_token_ids
from .prompt import build_judge_prompt
from .resume import weights_digest
from .scoring import Generation, JudgeResult

DEFAULT_TOP_LOGPROBS = 20
#: engine arguments that change throughput or memory, never a score (left out of the resume key)
THROUGHPUT_ONLY = frozenset({"gpu_memory_utilization", "swap_space", "max_num_seqs", "max_num_batched_tokens",
                             "disable_log_stats", "seed"})


def score_from_top_logprobs(top: Mapping[Hashable, float], yes_key: Hashable, no_key: Hashable,
                            k: int) -> JudgeResult:
    """s = p(Yes) / (p(Yes) + p(No)) from a token -> logprob map of the top ``k``; ``failed`` if either is absent."""
    yes, no = top.get(yes_key), top.get(no_key)
    missing = [word for word, value in ((YES, yes), (NO, no)) if value is None]
    if missing:
        return JudgeResult.failed(f"Yes/No not in top-{k} logprobs (missing {' and '.join(map(repr, missing))}); "
                                  "raise top_logprobs")
    yes, no = float(yes), float(no)
    if math.isnan(yes) or math.isnan(no) or (math.isinf(yes) and math.isinf(no)):
        return JudgeResult.failed(f"invalid Yes/No logprobs ({yes}, {no})")
    diff = no - yes
    score = 1.0 / (1.0 + math.exp(diff)) if diff < 700 else 0.0
    return JudgeResult.ok(score, yes, no)


def _import_vllm():
    try:
        import vllm
    except ImportError as error:
        raise ImportError(
            "the vLLM judge backend needs the 'vllm' package, which is not installed. Install the "
            "'gpu-judge' extra (pip install -e '.[gpu-judge]') or use the conda env envs/judge.yaml on a CUDA "
            "machine; on CPU run scripts/setup_vllm_cpu.sh (.venv-vllm). TransformersJudge runs without it."
        ) from error
    return vllm


def sampling_params(vllm, yes_id: int, no_id: int, top_logprobs: int):
    """One greedy token with the logprobs of ``[yes_id, no_id]`` (``logprob_token_ids``), else of the top-K."""
    try:
        return vllm.SamplingParams(max_tokens=1, temperature=0.0, logprob_token_ids=[yes_id, no_id])
    except TypeError:  # vLLM < 0.32: no logprob_token_ids
        return vllm.SamplingParams(max_tokens=1, temperature=0.0, logprobs=top_logprobs)


class VllmOfflineJudge:
    """Judge with an in-process ``vllm.LLM`` engine (prefix caching on, ``max_logprobs`` = ``top_logprobs``).

    ``engine_kwargs`` go to ``vllm.LLM`` (e.g. ``tensor_parallel_size``, ``gpu_memory_utilization``,
    ``max_model_len``, ``dtype``; see :mod:`.engine`), ``engine_env`` to the engine's environment
    (``VLLM_CPU_KVCACHE_SPACE``). The model's own code runs only with ``trust_remote_code=True``.
    """

    def __init__(self, model: str, top_logprobs: int = DEFAULT_TOP_LOGPROBS, max_images_per_prompt: int = 2,
                 chunk_size: int = 1024, model_id: str | None = None, trust_remote_code: bool = False,
                 engine_env: Mapping[str, str] | None = None, **engine_kwargs: Any):
        vllm = _import_vllm()

        kwargs = {"max_logprobs": top_logprobs, "enable_prefix_caching": True,
                  "limit_mm_per_prompt": {"image": max_images_per_prompt}, **engine_kwargs,
                  "trust_remote_code": bool(trust_remote_code)}
        with environment(engine_env or {}):
            self.llm = vllm.LLM(model=str(model), **kwargs)
        self.tokenizer = self.llm.get_tokenizer()
        if not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(f"the tokenizer of {model} has no chat template; the judge prompt needs one")
        self.yes_id, self.no_id = yes_no_token_ids(self.tokenizer)
        self.sampling = sampling_params(vllm, self.yes_id, self.no_id, top_logprobs)
        self.top_logprobs, self.chunk_size = top_logprobs, chunk_size
        self.model_id = model_id or str(model)
        self.settings = {"backend": "vllm_offline", "weights": weights_digest(model),
                         "engine": {k: v for k, v in kwargs.items() if k not in THROUGHPUT_ONLY}}

    def _request_of(self, prompt: ChatPrompt) -> dict:
        text, paths = prompt.render(self.tokenizer)
        request: dict = {"prompt": text}
        if paths:
            images = []
            for path in paths:
                with Image.open(path) as image:
                    images.append(image.convert("RGB"))
            request["multi_modal_data"] = {"image": images}
        return request

    def _result(self, output) -> JudgeResult:
        try:
            position = output.outputs[0].logprobs[0]
            top = {token_id: entry.logprob for token_id, entry in position.items()}
        except (AttributeError, IndexError, KeyError, TypeError) as error:
            return JudgeResult.failed(f"no logprobs in the vLLM output: {type(error).__name__}: {error}")
        return score_from_top_logprobs(top, self.yes_id, self.no_id, self.top_logprobs)

    def _run(self, items: Sequence, build, sampling, read, failed) -> list:
        """``read(output)`` per item in order, ``chunk_size`` prompts per engine call (bounded image memory);
        an item whose prompt ``build(item)`` cannot be built or rendered (unreadable image, empty item) gets
        ``failed(message)`` instead."""
        results: list = [None] * len(items)
        for start in range(0, len(items), self.chunk_size):
            index, requests = [], []
            for i in range(start, min(start + self.chunk_size, len(items))):
                try:
                    requests.append(self._request_of(build(items[i])))
                    index.append(i)
                except (OSError, ValueError) as error:
                    results[i] = failed(f"{type(error).__name__}: {error}")
            if requests:
                for i, output in zip(index, self.llm.generate(requests, sampling_params=sampling, use_tqdm=False)):
                    results[i] = read(output)
        return results

    def generate(self, prompts: Sequence[ChatPrompt], max_new_tokens: int = 8) -> list[Generation]:
        """Greedy continuations (temperature 0) in prompt order."""
        sampling = _import_vllm().SamplingParams(temperature=0.0, max_tokens=max_new_tokens)
        return self._run(prompts, lambda prompt: prompt, sampling, lambda output: Generation.ok(output.outputs[0].text),
                         Generation.failed)

    def score(self, pairs: Sequence[JudgePair]) -> list[JudgeResult]:
        """Results in pair order (a pair whose prompt cannot be built fails alone)."""
        return self._run(pairs, lambda pair: build_judge_prompt(pair.query, pair.candidate), self.sampling,
                         self._result, JudgeResult.failed)
