"""Access to the judge server: API key (client header, server environment, never logged), localhost
binding by default, and no remote code unless configured."""
import json
import os
import sys
import textwrap

import pytest
import requests

from uniembed.embed.embedder import EmbedItem
from uniembed.judge.pairs import JudgePair
from uniembed.judge.vllm_client import VllmClientJudge, VllmServer

from .fake_http import JSONHandler, serving

KEY = "sk-judge-7c1f-secret"
COMPLETION = {"choices": [{"logprobs": {"content": [{"token": "Yes", "logprob": -0.1, "top_logprobs": [
    {"token": "Yes", "logprob": -0.1}, {"token": "No", "logprob": -2.4}]}]}}]}


def pairs(n=2):
    query = EmbedItem("a red circle", None, "Find the caption.")
    return [JudgePair("q1", f"c{i}", False, i + 1, query, EmbedItem(f"text {i}")) for i in range(n)]


class _Recorder(JSONHandler):
    authorizations: list = []

    def do_POST(self):
        self.read_body()
        self.authorizations.append(self.headers.get("Authorization"))
        self.send_json(200, json.dumps(COMPLETION).encode())


@pytest.fixture()
def recorder():
    _Recorder.authorizations.clear()
    with serving(_Recorder) as url:
        yield url


def test_the_client_sends_the_key_as_a_bearer_header_only_when_set(recorder):
    with_key = VllmClientJudge(recorder, "judge", concurrency=2, timeout=5, api_key=KEY)
    assert all(r.status == "ok" for r in with_key.score(pairs()))
    assert _Recorder.authorizations == [f"Bearer {KEY}"] * 2
    assert KEY not in repr(with_key) and KEY not in json.dumps(with_key.settings)
    _Recorder.authorizations.clear()
    VllmClientJudge(recorder, "judge", timeout=5).score(pairs(1))
    assert _Recorder.authorizations == [None]


# A stand-in for `vllm serve`: prints its argv, requires VLLM_API_KEY (as vLLM does) on /v1 routes.
FAKE_SERVE = textwrap.dedent('''
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer
    argv = sys.argv[1:]
    print("argv", json.dumps(argv), flush=True)
    if "--die" in argv:  # a careless server that prints its environment before dying
        print("env VLLM_API_KEY=" + os.environ.get("VLLM_API_KEY", ""), flush=True)
        sys.exit(3)
    KEY = os.environ.get("VLLM_API_KEY")
    BODY = json.dumps(%s).encode()
    class Handler(BaseHTTPRequestHandler):
        def _send(self, code, body=b""):
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        def do_GET(self):
            self._send(200 if self.path == "/health" else 404)
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            if KEY and self.headers.get("Authorization") != "Bearer " + KEY:
                return self._send(401, b'{"error": "Unauthorized"}')
            self._send(200, BODY)
        def log_message(self, *a):
            pass
    HTTPServer((argv[argv.index("--host") + 1], int(argv[argv.index("--port") + 1])), Handler).serve_forever()
''') % repr(COMPLETION)


@pytest.fixture()
def serve(tmp_path):
    path = tmp_path / "fake_vllm_serve.py"
    path.write_text(FAKE_SERVE)
    return [sys.executable, str(path)]


def _argv(log):
    return json.loads(log.read_text().split("argv ", 1)[1].splitlines()[0])


def test_a_started_server_requires_the_key_binds_localhost_and_runs_no_remote_code(serve, tmp_path, monkeypatch):
    monkeypatch.setenv("VLLM_API_KEY", "inherited-from-the-shell")  # not passed on: the key is ours or none
    log = tmp_path / "serve.log"
    with VllmServer("tiny-judge", command=serve, startup_timeout=30, log_path=log, api_key=KEY) as server:
        url = server.base_url + "/v1/chat/completions"
        assert requests.post(url, json={}, timeout=5).status_code == 401
        assert all(r.status == "ok" for r in VllmClientJudge(server.base_url, "tiny-judge", api_key=KEY).score(pairs()))
        (denied,) = VllmClientJudge(server.base_url, "tiny-judge", retries=0).score(pairs(1))
        assert denied.status == "failed" and "HTTP 401" in denied.error
    argv = _argv(log)
    assert argv[argv.index("--host") + 1] == "127.0.0.1" and server.base_url.startswith("http://127.0.0.1:")
    assert "--trust-remote-code" not in argv and "--api-key" not in argv
    assert KEY not in log.read_text() and KEY not in " ".join(server.argv) and KEY not in json.dumps(server.settings)
    with VllmServer("tiny-judge", command=serve, startup_timeout=30, log_path=log) as open_server:
        (result,) = VllmClientJudge(open_server.base_url, "tiny-judge").score(pairs(1))
        assert result.status == "ok"  # no key configured: the shell's VLLM_API_KEY did not leak in


def test_remote_code_only_when_configured_and_no_key_on_the_command_line(serve, tmp_path):
    log = tmp_path / "serve.log"
    with VllmServer("tiny-judge", command=serve, startup_timeout=30, log_path=log, trust_remote_code=True,
                    host="0.0.0.0") as server:
        assert server.base_url.startswith("http://127.0.0.1:")  # bound everywhere, reached locally
    argv = _argv(log)
    assert "--trust-remote-code" in argv and argv[argv.index("--host") + 1] == "0.0.0.0"
    assert server.settings["trust_remote_code"] is True
    for extra, message in ((["--trust-remote-code"], "recipe.judge.trust_remote_code: true"),
                           (["--api-key", KEY], "recipe.judge.server.api_key_env"),
                           ([f"--api-key={KEY}"], "recipe.judge.server.api_key_env")):
        with pytest.raises(ValueError, match=message) as error:
            VllmServer("tiny-judge", command=serve, extra_args=extra)
        assert KEY not in str(error.value)


def test_the_key_is_redacted_from_a_dying_servers_log_tail(serve, tmp_path):
    with pytest.raises(RuntimeError, match=r"(?s)exited with code 3.*VLLM_API_KEY=<api key>") as error:
        with VllmServer("tiny-judge", command=[*serve, "--die"], startup_timeout=30, log_path=tmp_path / "s.log",
                        api_key=KEY):
            pass
    assert KEY not in str(error.value)
    assert os.environ.get("VLLM_API_KEY") != KEY  # the key went to the child only
