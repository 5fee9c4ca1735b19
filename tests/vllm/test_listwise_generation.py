"""Listwise reranking generates through every backend: greedy generations of the same listwise prompts
(query + 4 candidates, images included) from transformers, a vLLM offline engine and a vLLM server.

The model is an untrained tiny Qwen2-VL (``generating_model``), not the trained judge: the judge answers every
listwise prompt with its one learned word ("No"), which would make the comparison trivial."""
import json
import os
import subprocess
import sys
from collections import defaultdict

import pytest

from tests.workflow.dag import ROOT

pytestmark = pytest.mark.vllm
NEW_TOKENS = 6


@pytest.fixture(scope="module")
def generating_model(tmp_path_factory):
    """An untrained tiny Qwen2-VL (text head size 32, which vLLM's CPU attention serves): varied greedy text."""
    from uniembed.data.synthetic.world import corpus
    from uniembed.model.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("vllm-generating-model") / "tiny", corpus(0), family_name="qwen2_vl")


def test_transformers_vllm_offline_and_vllm_server_generate_the_same_greedy_text(judge_world, generating_model,
                                                                                 tmp_path):
    from uniembed.judge.transformers_backend import TransformersJudge
    from uniembed.rerank.prompts import build_listwise_prompt

    by_query = defaultdict(list)
    for pair in judge_world.pairs:
        by_query[pair.query_id].append(pair)
    prompts = [build_listwise_prompt(pairs[0].query, [p.candidate for p in pairs[:4]]) for pairs in list(by_query.values())[:12]]
    assert any(len(p.image_paths) >= 3 for p in prompts), "the prompts must carry several images"
    (tmp_path / "prompts.json").write_text(json.dumps([list(map(list, p.parts)) for p in prompts]))
    env = {k: v for k, v in os.environ.items() if k != "UNIEMBED_OVERRIDES"}
    result = subprocess.run([sys.executable, "-m", "tests.vllm.generation_run", str(generating_model),
                             str(tmp_path / "prompts.json"), str(tmp_path / "out.json"), str(NEW_TOKENS)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    found = json.loads((tmp_path / "out.json").read_text())
    found["transformers"] = [g.__dict__ for g in TransformersJudge(generating_model, batch_size=4, device="cpu")
                             .generate(prompts, NEW_TOKENS)]
    for name, generations in found.items():
        assert [g["status"] for g in generations] == ["ok"] * len(prompts), (name, generations[:2])
    # vLLM's incremental detokenizer holds back a trailing incomplete UTF-8 sequence that transformers'
    # batch_decode renders as U+FFFD: compare the texts without it (the tokens are the same)
    texts = {name: [g["text"].rstrip("\ufffd") for g in generations] for name, generations in found.items()}
    print("\n" + "\n".join(f"{name}: {values[:3]}" for name, values in texts.items()))
    assert texts["vllm_offline"] == texts["vllm_server"]          # one engine, two front ends
    same = sum(a == b for a, b in zip(texts["transformers"], texts["vllm_offline"]))
    assert same >= len(prompts) - 1, texts                        # float32 greedy; one near-tie may differ
    assert len(set(texts["transformers"])) > 1, "the generations are degenerate"
