""""Yes" and "No" are found by token id or exact token string, never by the first occurrence of a decoded
string: a real vLLM server returns many byte tokens as ``token ''`` with empty bytes, and with
``return_tokens_as_token_ids`` every token as ``token_id:N``. The client asks for the two ids' logprobs."""
import json

import pytest

from uniembed.embed.embedder import EmbedItem
from uniembed.judge.pairs import JudgePair
from uniembed.judge.vllm_backend import score_from_top_logprobs
from uniembed.judge.vllm_client import VllmClientJudge, yes_no_logprobs

from .fake_http import JSONHandler, serving

YES_ID, NO_ID = 411, 523


def test_byte_tokens_that_decode_to_nothing_do_not_hide_yes_and_no():
    entries = [("", -0.3), ("", -0.9), ("Yes", -1.2), ("", -1.5), ("No", -2.0), (" No", -2.2), ("Yes.", -3.0)]
    assert yes_no_logprobs(entries) == {"Yes": -1.2, "No": -2.0}


def test_token_ids_are_matched_by_id():
    entries = [("token_id:7", -0.1), (f"token_id:{NO_ID}", -1.4), (f"token_id:{YES_ID}", -0.8), ("token_id:4110", -3.0)]
    assert yes_no_logprobs(entries, (YES_ID, NO_ID)) == {"Yes": -0.8, "No": -1.4}
    assert yes_no_logprobs(entries) == {}  # ids without knowing which: nothing matches, the pair fails
    assert score_from_top_logprobs(yes_no_logprobs(entries), "Yes", "No", 2).status == "failed"
    # a server that ignored return_tokens_as_token_ids still sends the words themselves
    assert yes_no_logprobs([("Yes", -0.5), ("No", -0.7)], (YES_ID, NO_ID)) == {"Yes": -0.5, "No": -0.7}


def test_a_word_found_twice_is_an_error_not_a_guess():
    with pytest.raises(ValueError, match="'Yes' appears twice"):
        yes_no_logprobs([("Yes", -0.5), ("Yes", -0.9), ("No", -1.0)])
    with pytest.raises(ValueError, match="'No' appears twice"):
        yes_no_logprobs([(f"token_id:{NO_ID}", -0.5), ("No", -0.9)], (YES_ID, NO_ID))


class _IdServer(JSONHandler):
    """Answers like vLLM >= 0.32 with logprob_token_ids + return_tokens_as_token_ids: the sampled token
    (an unprintable byte) and the two requested ids."""

    payloads: list = []

    def do_POST(self):
        payload = json.loads(self.read_body())
        self.payloads.append(payload)
        ids = payload.get("logprob_token_ids") or []
        top = [{"token": "token_id:1", "logprob": -0.01, "bytes": []}]
        top += [{"token": f"token_id:{i}", "logprob": lp, "bytes": []} for i, lp in zip(ids, (-4.0, -6.5))]
        if payload.get("candidate_twice"):
            top.append(top[-1])
        content = [{"token": "token_id:1", "logprob": -0.01, "top_logprobs": top}]
        body = {"choices": [{"logprobs": {"content": content}}]}
        self.send_json(200, json.dumps(body).encode())


def _pairs(n=2):
    query = EmbedItem("a red circle", None, "Find the caption.")
    return [JudgePair("q1", f"c{i}", False, i + 1, query, EmbedItem(f"text {i}")) for i in range(n)]


def test_the_client_requests_and_reads_the_yes_no_ids(tiny_qwen2vl):
    from uniembed.model.chat import yes_no_token_ids
    from uniembed.model.processor import load_processor

    _IdServer.payloads.clear()
    with serving(_IdServer) as url:
        client = VllmClientJudge(url, str(tiny_qwen2vl), timeout=5)  # a local directory: ids from its tokenizer
        results = client.score(_pairs())
    yes_id, no_id = yes_no_token_ids(load_processor(tiny_qwen2vl).tokenizer)
    assert client.token_ids == (yes_id, no_id)
    assert all(p["logprob_token_ids"] == [yes_id, no_id] and p["return_tokens_as_token_ids"] is True
               for p in _IdServer.payloads)
    assert [(r.status, r.yes_logit, r.no_logit) for r in results] == [("ok", -4.0, -6.5)] * 2
    assert results[0].score == pytest.approx(1 / (1 + 2.718281828459045 ** (-6.5 + 4.0)))

    with serving(_IdServer) as url:  # a served name, no ids given: plain top-K by token text
        VllmClientJudge(url, "served-judge", timeout=5, retries=0).score(_pairs(1))
    assert "logprob_token_ids" not in _IdServer.payloads[-1]


def test_duplicate_matches_fail_the_pair(monkeypatch):
    monkeypatch.setattr(VllmClientJudge, "payload", lambda self, pair: {"logprob_token_ids": [YES_ID, NO_ID],
                                                                        "candidate_twice": True})
    with serving(_IdServer) as url:
        (result,) = VllmClientJudge(url, "judge", timeout=5, token_ids=(YES_ID, NO_ID)).score(_pairs(1))
    assert result.status == "failed" and result.score is None and "appears twice" in result.error
