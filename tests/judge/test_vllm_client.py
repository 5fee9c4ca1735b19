"""The vLLM judge path without vLLM: the shared top-logprobs rule, the offline backend against a fake
``vllm`` module, the HTTP client against a fake OpenAI-compatible server, and the VllmServer lifecycle."""
import json
import math
import os
import sys
import textwrap
import threading
import time
import types
from collections import Counter

import pytest
import requests
from PIL import Image

from uniembed.embed.embedder import EmbedItem
from uniembed.judge.pairs import JudgePair
from uniembed.judge.vllm_backend import VllmOfflineJudge, score_from_top_logprobs
from uniembed.judge.vllm_client import (VllmClientJudge, VllmServer, free_port, top_logprobs_of_response,
                                        yes_no_logprobs)
from uniembed.model.processor import load_processor

from .fake_http import JSONHandler, serving


def _s(yes, no):
    return math.exp(yes) / (math.exp(yes) + math.exp(no))


def _completion(top):
    """A chat completion with logprobs, as the OpenAI-compatible server documents it."""
    first = top[0] if top else {"token": "Maybe", "logprob": -0.1, "bytes": [77]}
    return {"id": "chatcmpl-1", "object": "chat.completion", "model": "judge",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": first["token"]},
                         "logprobs": {"content": [{**first, "top_logprobs": top}]}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 90, "completion_tokens": 1, "total_tokens": 91}}


def _entry(token, logprob):
    return {"token": token, "logprob": logprob, "bytes": list(token.encode())}


YES_HIGH = [_entry("Yes", -0.1), _entry("No", -2.4), _entry(" Yes", -5.0)]
NO_HIGH = [_entry("No", -0.05), _entry("Maybe", -4.0), _entry("Yes", -3.2)]


def test_the_shared_rule_on_documented_shapes():
    entries = top_logprobs_of_response(_completion(YES_HIGH))
    assert entries == [("Yes", -0.1), ("No", -2.4), (" Yes", -5.0)]
    top = yes_no_logprobs(entries)
    assert top == {"Yes": -0.1, "No": -2.4}
    result = score_from_top_logprobs(top, "Yes", "No", 20)
    assert result.status == "ok" and result.score == pytest.approx(_s(-0.1, -2.4), abs=1e-12)
    assert (result.yes_logit, result.no_logit) == (-0.1, -2.4)
    assert score_from_top_logprobs(yes_no_logprobs(top_logprobs_of_response(_completion(NO_HIGH))), "Yes", "No",
                                   20).score == pytest.approx(_s(-3.2, -0.05))
    # offline engine shape: {token_id: Logprob(logprob, rank, decoded_token)} -> {token_id: logprob}
    offline = {17: types.SimpleNamespace(logprob=-0.7, rank=1, decoded_token="No"),
               42: types.SimpleNamespace(logprob=-0.9, rank=2, decoded_token="Yes")}
    result = score_from_top_logprobs({t: e.logprob for t, e in offline.items()}, 42, 17, 2)
    assert result.score == pytest.approx(_s(-0.9, -0.7))
    for top, missing in (({"Maybe": -0.1}, "'Yes' and 'No'"), ({"Yes": -0.1}, "'No'"), ({"No": -0.3}, "'Yes'")):
        failed = score_from_top_logprobs(top, "Yes", "No", 5)
        assert failed.status == "failed" and failed.score is None
        assert "Yes/No not in top-5 logprobs" in failed.error and missing in failed.error
    assert score_from_top_logprobs({"Yes": -800.0, "No": 0.0}, "Yes", "No", 2).score == 0.0  # no overflow


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    path = tmp_path_factory.mktemp("vllm-img") / "q.png"
    Image.new("RGB", (56, 56), (220, 20, 20)).save(path)
    return str(path)


def _pairs(image, *candidate_texts, query_id="q1"):
    query = EmbedItem("a red circle", image, "Find the caption.")
    return [JudgePair(query_id, f"c{i}", False, i + 1, query, EmbedItem(text))
            for i, text in enumerate(candidate_texts)]


def test_offline_backend_needs_vllm(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ImportError, match="gpu-judge.*envs/judge.yaml"):
        VllmOfflineJudge("some/model")


def test_offline_backend_against_a_fake_vllm_module(monkeypatch, tiny_qwen2vl, image):
    tokenizer = load_processor(tiny_qwen2vl).tokenizer
    yes_id, no_id = tokenizer.convert_tokens_to_ids("Yes"), tokenizer.convert_tokens_to_ids("No")
    engines = []

    class LLM:
        def __init__(self, model, **kwargs):
            self.model, self.kwargs, self.calls = model, kwargs, []
            engines.append(self)

        def get_tokenizer(self):
            return tokenizer

        def generate(self, prompts, sampling_params=None, use_tqdm=True):
            self.calls.append((prompts, sampling_params))
            lp = types.SimpleNamespace
            outputs = []
            for request in prompts:
                top = {7: lp(logprob=-0.01, rank=1, decoded_token="a")}
                if "missing" not in request["prompt"]:
                    top |= {yes_id: lp(logprob=-1.0, rank=2, decoded_token="Yes"),
                            no_id: lp(logprob=-2.0, rank=3, decoded_token="No")}
                outputs.append(lp(outputs=[lp(logprobs=[top], text="a")]))
            return outputs

    def old_sampling_params(max_tokens, temperature, logprobs):  # vLLM < 0.32: no logprob_token_ids
        return types.SimpleNamespace(max_tokens=max_tokens, temperature=temperature, logprobs=logprobs)

    fake = types.ModuleType("vllm")
    fake.LLM, fake.SamplingParams = LLM, old_sampling_params
    monkeypatch.setitem(sys.modules, "vllm", fake)
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    seen_env = []
    engine_init = LLM.__init__
    LLM.__init__ = lambda self, model, **kw: (seen_env.append(os.environ.get("VLLM_CPU_KVCACHE_SPACE")),
                                             engine_init(self, model, **kw))[1]
    judge = VllmOfflineJudge("/models/judge", top_logprobs=10, chunk_size=2, gpu_memory_utilization=0.5,
                             engine_env={"VLLM_CPU_KVCACHE_SPACE": "3"})
    assert seen_env == ["3"] and "VLLM_CPU_KVCACHE_SPACE" not in os.environ  # set for the engine's start only
    results = judge.score(_pairs(image, "one", "missing", "three"))
    engine = engines[0]
    assert engine.kwargs == {"max_logprobs": 10, "enable_prefix_caching": True, "trust_remote_code": False,
                             "limit_mm_per_prompt": {"image": 2}, "gpu_memory_utilization": 0.5}
    assert judge.settings == {"backend": "vllm_offline", "weights": None,  # not a local directory
                              "engine": {k: v for k, v in engine.kwargs.items() if k != "gpu_memory_utilization"}}
    assert [len(prompts) for prompts, _ in engine.calls] == [2, 1]
    assert vars(engine.calls[0][1]) == {"max_tokens": 1, "temperature": 0.0, "logprobs": 10}
    request = engine.calls[0][0][0]
    assert request["prompt"].count("<|image_pad|>") == 1 and request["prompt"].endswith("<|im_start|>assistant\n")
    assert [im.size for im in request["multi_modal_data"]["image"]] == [(56, 56)]
    assert [r.status for r in results] == ["ok", "failed", "ok"]
    assert results[0].score == pytest.approx(_s(-1.0, -2.0)) and "Yes/No not in top-10" in results[1].error
    assert judge.model_id == "/models/judge"


def _key(payload):
    """The candidate's text: what follows 'Candidates:' in the last text part, without the final '.'."""
    return payload["messages"][0]["content"][-1]["text"].rsplit("Candidates:", 1)[-1].rstrip(".")


class _FakeOpenAI(JSONHandler):
    """Behaviour chosen by the candidate's text."""

    hits: Counter = Counter()
    payloads: list = []
    lock = threading.Lock()

    def do_POST(self):
        payload = json.loads(self.read_body())
        key = _key(payload)
        with self.lock:
            self.hits[key] += 1
            self.payloads.append(payload)
            first = self.hits[key] == 1
        if key == "slow":
            time.sleep(0.6)
        if key == "error" or (key == "flaky" and first):
            return self.send_json(503, b'{"error": "engine restarting"}')
        if key == "bad-request":
            return self.send_json(400, b'{"error": "top_logprobs exceeds max_logprobs"}')
        if key == "garbage" or (key == "flaky-json" and first):
            return self.send_json(200, b'{"choices": [{"logprobs": nul')
        if key == "no-logprobs":
            return self.send_json(200, json.dumps({"choices": [{"logprobs": None}]}).encode())
        top = {"missing": [_entry("Maybe", -0.1)], "no": NO_HIGH}.get(key, YES_HIGH)
        self.send_json(200, json.dumps(_completion(top)).encode())


@pytest.fixture()
def fake_server():
    _FakeOpenAI.hits.clear()
    _FakeOpenAI.payloads.clear()
    with serving(_FakeOpenAI) as url:
        yield url


def test_client_scores_retries_and_fails_explicitly(fake_server, image):
    keys = ["yes", "no", "flaky", "flaky-json", "garbage", "no-logprobs", "error", "missing", "bad-request"]
    client = VllmClientJudge(fake_server, "judge", concurrency=4, timeout=5, retries=2, backoff=0.01, top_logprobs=7)
    results = dict(zip(keys, client.score(_pairs(image, *keys))))
    hits = _FakeOpenAI.hits
    assert results["yes"].score == pytest.approx(_s(-0.1, -2.4))
    assert results["no"].score == pytest.approx(_s(-3.2, -0.05))
    assert results["flaky"].status == results["flaky-json"].status == "ok"
    assert hits["flaky"] == hits["flaky-json"] == 2 and hits["yes"] == 1
    for key, text in (("garbage", "malformed response"), ("no-logprobs", "malformed response"), ("error", "HTTP 503")):
        assert results[key].status == "failed" and results[key].score is None and hits[key] == 3
        assert "gave up after 3 attempts" in results[key].error and text in results[key].error
    assert "Yes/No not in top-7 logprobs" in results["missing"].error and hits["missing"] == 1
    assert "HTTP 400" in results["bad-request"].error and hits["bad-request"] == 1  # client errors are not retried
    assert client.requests_sent == sum(hits.values()) == 17 and client.retries_done == 2 + 2 * 3

    payload = next(p for p in _FakeOpenAI.payloads if _key(p) == "yes")
    assert {k: payload[k] for k in ("model", "max_tokens", "temperature", "logprobs", "top_logprobs")} == {
        "model": "judge", "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 7}
    parts = payload["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "text"]
    assert parts[1]["image_url"]["url"].startswith("data:image/png;base64,")


def test_client_times_out_and_reports_a_server_that_is_down(fake_server, image):
    client = VllmClientJudge(fake_server, "judge", timeout=0.2, retries=1, backoff=0.01)
    (slow,) = client.score(_pairs(image, "slow"))
    assert slow.status == "failed" and "Timeout" in slow.error and _FakeOpenAI.hits["slow"] == 2
    down = VllmClientJudge(f"http://127.0.0.1:{free_port()}", "judge", retries=2, backoff=0.01)
    results = down.score(_pairs(image, "a", "b"))
    assert all(r.status == "failed" and r.score is None and "ConnectionError" in r.error for r in results)
    assert down.requests_sent == 6 and down.retries_done == 4


FAKE_SERVE = textwrap.dedent('''
    import argparse, json, os, signal, sys, time
    from http.server import BaseHTTPRequestHandler, HTTPServer
    parser = argparse.ArgumentParser()
    for flag in ("--model", "--host", "--port", "--max-logprobs", "--limit-mm-per-prompt"):
        parser.add_argument(flag)
    parser.add_argument("--enable-prefix-caching", action="store_true")
    parser.add_argument("--delay", type=float, default=0)
    parser.add_argument("--die", action="store_true")
    parser.add_argument("--ignore-term", action="store_true")
    args = parser.parse_args()
    print("pid", os.getpid(), "argv", json.dumps(sys.argv[1:]), flush=True)
    if args.die:
        print("loading weights...\\nRuntimeError: CUDA out of memory (fake)", flush=True)
        sys.exit(3)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(args.delay)
    BODY = json.dumps(%s).encode()
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/health" else 404)
            self.send_header("Content-Length", "0")
            self.end_headers()
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        def log_message(self, *a):
            pass
    HTTPServer((args.host, int(args.port)), Handler).serve_forever()
''') % repr(_completion(YES_HIGH))


@pytest.fixture()
def serve_script(tmp_path):
    path = tmp_path / "fake_vllm_serve.py"
    path.write_text(FAKE_SERVE)
    return [sys.executable, str(path)]


def _pid(log_text):
    return int(log_text.split()[1])


def test_server_starts_serves_and_stops(serve_script, tmp_path, image):
    log = tmp_path / "serve.log"
    with VllmServer("tiny-judge", command=serve_script, extra_args=["--delay", "0.7"], startup_timeout=30,
                    log_path=log) as server:
        assert requests.get(server.base_url + "/health", timeout=5).status_code == 200
        process = server.process
        (result,) = VllmClientJudge(server.base_url, "tiny-judge").score(_pairs(image, "x"))
        assert result.status == "ok" and result.score == pytest.approx(_s(-0.1, -2.4))
    assert process.poll() is not None
    with pytest.raises(requests.ConnectionError):
        requests.get(server.base_url + "/health", timeout=2)
    argv = json.loads(log.read_text().split("argv ", 1)[1].splitlines()[0])
    assert argv[argv.index("--model") + 1] == "tiny-judge" and "--enable-prefix-caching" in argv
    assert argv[argv.index("--max-logprobs") + 1] == "20"
    assert json.loads(argv[argv.index("--limit-mm-per-prompt") + 1]) == {"image": 2}


def test_a_server_that_dies_at_start_is_reported_with_its_log(serve_script):
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*CUDA out of memory \(fake\)"):
        with VllmServer("tiny-judge", command=serve_script, extra_args=["--die"], startup_timeout=30):
            pass


def test_startup_timeout_and_a_server_ignoring_sigterm_are_stopped(serve_script, tmp_path):
    log = tmp_path / "slow.log"
    with pytest.raises(TimeoutError, match="not healthy"):
        with VllmServer("m", command=serve_script, extra_args=["--delay", "60"], startup_timeout=1.0, log_path=log):
            pass
    with pytest.raises(ProcessLookupError):
        os.kill(_pid(log.read_text()), 0)
    server = VllmServer("m", command=serve_script, extra_args=["--ignore-term"], startup_timeout=30, stop_timeout=0.5)
    start = time.monotonic()
    with server:
        process = server.process
    assert process.poll() is not None and time.monotonic() - start < 15
