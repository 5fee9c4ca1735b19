"""Greedy generations of listwise prompts through a vLLM offline engine and a started vLLM server, written
as JSON (the `vllm` tier runs this as a script: vLLM's engine process re-imports ``__main__``).

    python -m tests.vllm.generation_run MODEL PROMPTS.json OUT.json
"""
from __future__ import annotations

import json
import sys

from uniembed.judge.engine import engine_env, engine_settings, llm_kwargs
from uniembed.model.chat import ChatPrompt

ENGINE = {"dtype": "float32", "enforce_eager": True, "cpu_kvcache_space": 1}
SERVER = [sys.executable, "-m", "vllm.entrypoints.openai.api_server"]


def main(model: str, prompts_path: str, out_path: str, max_new_tokens: int = 6) -> None:
    from uniembed.judge.vllm_backend import VllmOfflineJudge
    from uniembed.judge.vllm_client import VllmClientJudge, VllmServer

    prompts = [ChatPrompt(tuple(tuple(part) for part in parts)) for parts in json.loads(open(prompts_path).read())]
    images = max(len(p.image_paths) for p in prompts)
    engine = engine_settings(ENGINE)
    offline = VllmOfflineJudge(model, max_images_per_prompt=images, engine_env=engine_env(engine), **llm_kwargs(engine))
    found = {"vllm_offline": [g.__dict__ for g in offline.generate(prompts, max_new_tokens)]}
    del offline
    with VllmServer(model, command=SERVER, engine=engine, max_images_per_prompt=images) as server:
        found["vllm_server"] = [g.__dict__ for g in VllmClientJudge(server.base_url, model).generate(prompts, max_new_tokens)]
    with open(out_path, "w") as handle:
        json.dump(found, handle)


if __name__ == "__main__":
    main(*sys.argv[1:4], *map(int, sys.argv[4:5]))
