"""The three judge backends give the same UniME-V2 scores on the same pairs: transformers (one forward
pass, softmax over the Yes/No logits), a vLLM offline engine run by the judge stage, and a vLLM server
run by the judge rule under Snakemake (logprobs of the Yes/No token ids). float32 throughout."""
import itertools

import pytest

pytestmark = pytest.mark.vllm
TOLERANCE = 1e-5


def _scores(table, pairs, name):
    keys = list(zip(table["query_id"].to_pylist(), table["candidate_id"].to_pylist()))
    assert keys == [(p.query_id, p.candidate_id) for p in pairs], f"{name}: rows are not the pairs, in order"
    failed = [e for s, e in zip(table["status"].to_pylist(), table["error"].to_pylist()) if s != "ok"]
    assert not failed, f"{name}: {len(failed)} pairs failed, e.g. {failed[:3]}"
    return table["score"].to_pylist()


def test_transformers_vllm_offline_and_vllm_server_agree(judge_world, judge_model, offline_run, server_run):
    from uniembed.judge.transformers_backend import TransformersJudge

    pairs = judge_world.pairs
    reference = TransformersJudge(judge_model, batch_size=16, device="cpu").score(pairs)
    assert all(r.status == "ok" for r in reference)
    scores = {"transformers": [r.score for r in reference],
              "vllm_offline": _scores(offline_run, pairs, "vllm_offline"),
              "vllm_server": _scores(server_run.table, pairs, "vllm_server")}
    differences = {f"{a} vs {b}": max(abs(x - y) for x, y in zip(scores[a], scores[b]))
                   for a, b in itertools.combinations(scores, 2)}
    print(f"\n{len(pairs)} pairs, max |score difference|: "
          + ", ".join(f"{name} {value:.2e}" for name, value in differences.items()))
    assert all(value <= TOLERANCE for value in differences.values()), differences
    assert len({round(s, 5) for s in scores["transformers"]}) > len(pairs) // 4, "scores are degenerate"
    assert {r["judge_model"] for r in server_run.table.select(["judge_model"]).to_pylist()} == {str(judge_model)}
