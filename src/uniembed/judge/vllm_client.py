"""The judge over an OpenAI-compatible ``vllm serve`` endpoint, and a server that lives for one job.

UniME-V2 ("MLLM-as-a-Judge for Hard Negatives Mining"): s = e_y / (e_y + e_n), read here from the
chat-completions log-probabilities of the single generated token. Request::

    POST {base_url}/v1/chat/completions
    {"model": ..., "messages": [user turn, images as base64 data URLs], "max_tokens": 1,
     "temperature": 0, "logprobs": true, "top_logprobs": K}

Response (the part read): ``choices[0].logprobs.content[0].top_logprobs`` =
``[{"token": "Yes", "logprob": -0.1, "bytes": [89, 101, 115]}, ...]``.

Failures: connection errors, timeouts, HTTP 5xx/429 and malformed JSON are retried with
exponential backoff (``backoff * 2**i`` seconds); other HTTP errors are not. A pair still failing
after the retries, or whose response lacks "Yes" or "No" in the top-K, is a ``failed`` result with
the error text, never a score of 0. Pairs are submitted in order to a bounded thread pool, so the
candidates of one query are in flight together and the server's prefix cache shares the query.

Access: with an API key the client sends ``Authorization: Bearer <key>`` and a started server
requires it. The key is handed to ``vllm serve`` through its ``VLLM_API_KEY`` environment variable
(the documented equivalent of ``--api-key``), never on the command line, where ``ps`` and vLLM's
own argument log would show it; it appears in no log, error message, manifest or artifact. The
server binds to 127.0.0.1 unless told otherwise and runs the model's own code only with
``trust_remote_code``.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import requests

from .pairs import JudgePair
from .prompt import NO, YES, build_judge_prompt
from .resume import weights_digest
from .scoring import JudgeResult
from .vllm_backend import DEFAULT_TOP_LOGPROBS, score_from_top_logprobs


def top_logprobs_of_response(body: dict) -> dict[str, float]:
    """token -> logprob of the first generated position (the first occurrence of a token string wins)."""
    entries = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    top: dict[str, float] = {}
    for entry in entries:
        top.setdefault(str(entry["token"]), float(entry["logprob"]))
    return top


class VllmClientJudge:
    """Judge through ``{base_url}/v1/chat/completions``; ``model`` is the served model name.

    ``settings`` (the resume key) holds the served model, the weights digest when ``model`` is a
    local directory, and ``top_logprobs``; ``server_settings`` adds those of a started server.
    """

    def __init__(self, base_url: str, model: str, concurrency: int = 16, timeout: float = 120.0,
                 retries: int = 3, backoff: float = 1.0, top_logprobs: int = DEFAULT_TOP_LOGPROBS,
                 model_id: str | None = None, api_key: str | None = None, server_settings: dict | None = None):
        if concurrency < 1 or retries < 0:
            raise ValueError(f"need concurrency >= 1 and retries >= 0, got {concurrency}, {retries}")
        self.url = base_url.rstrip("/") + "/v1/chat/completions"
        self.model, self.concurrency, self.timeout = model, concurrency, timeout
        self.retries, self.backoff, self.top_logprobs = retries, backoff, top_logprobs
        self.model_id = model_id or model
        self.settings = {"backend": "vllm_server", "served_model": model, "weights": weights_digest(model),
                         "top_logprobs": top_logprobs, "server": dict(server_settings or {})}
        self.requests_sent = self.retries_done = 0
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._lock, self._local = threading.Lock(), threading.local()

    def __repr__(self) -> str:  # never the key
        return f"VllmClientJudge({self.url!r}, {self.model!r}, api_key={'set' if self._headers else 'none'})"

    def _session(self) -> requests.Session:
        if not hasattr(self._local, "session"):
            self._local.session = requests.Session()
            self._local.session.headers.update(self._headers)
        return self._local.session

    def payload(self, pair: JudgePair) -> dict:
        return {"model": self.model, "messages": build_judge_prompt(pair.query, pair.candidate).messages(),
                "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": self.top_logprobs}

    def _count(self, retry: bool) -> None:
        with self._lock:
            self.requests_sent += 1
            self.retries_done += retry

    def score_one(self, pair: JudgePair) -> JudgeResult:
        try:
            payload = self.payload(pair)
        except (OSError, ValueError) as error:  # unreadable image, empty item
            return JudgeResult.failed(f"{type(error).__name__}: {error}")
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            self._count(retry=attempt > 0)
            try:
                response = self._session().post(self.url, json=payload, timeout=self.timeout)
            except requests.RequestException as error:
                last = f"{type(error).__name__}: {error}"
                continue
            if response.status_code >= 500 or response.status_code == 429:
                last = f"HTTP {response.status_code}: {response.text[:300]}"
                continue
            if response.status_code >= 400:
                return JudgeResult.failed(f"HTTP {response.status_code}: {response.text[:500]}")
            try:
                top = top_logprobs_of_response(response.json())
            except (ValueError, KeyError, IndexError, TypeError) as error:
                last = f"malformed response ({type(error).__name__}: {error}): {response.text[:200]}"
                continue
            return score_from_top_logprobs(top, YES, NO, self.top_logprobs)
        return JudgeResult.failed(f"gave up after {self.retries + 1} attempts: {last}")

    def score(self, pairs: Sequence[JudgePair]) -> list[JudgeResult]:
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge") as pool:
            return list(pool.map(self.score_one, pairs))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VllmServer:
    """``vllm serve`` for the lifetime of a ``with`` block: started, health-polled, then stopped.

    Runs ``<command> <model> --host H --port P --max-logprobs K --limit-mm-per-prompt {"image": N}
    --enable-prefix-caching [--trust-remote-code] <extra_args>``; ``command`` defaults to
    ``["vllm", "serve"]``, ``host`` to 127.0.0.1 (this machine only). ``api_key`` goes to the server
    as ``VLLM_API_KEY`` (not in argv); ``--api-key`` or ``--trust-remote-code`` in ``extra_args`` is
    refused. Output goes to ``log_path`` (a temporary file by default); a server that exits or is
    not healthy within ``startup_timeout`` seconds raises with the last lines of that log. On exit:
    SIGTERM to the server's process group, then SIGKILL after ``stop_timeout`` seconds.
    """

    def __init__(self, model: str, port: int | None = None, extra_args: Sequence[str] = (),
                 command: Sequence[str] | None = None, startup_timeout: float = 900.0,
                 host: str = "127.0.0.1", top_logprobs: int = DEFAULT_TOP_LOGPROBS, max_images_per_prompt: int = 2,
                 log_path: str | os.PathLike | None = None, stop_timeout: float = 30.0,
                 api_key: str | None = None, trust_remote_code: bool = False):
        extra_args = [str(arg) for arg in extra_args]
        for flag, fix in (("--api-key", "set the key in the environment variable named by "
                                        "recipe.judge.server.api_key_env"),
                          ("--trust-remote-code", "set recipe.judge.trust_remote_code: true")):
            if any(arg == flag or arg.startswith(flag + "=") for arg in extra_args):
                raise ValueError(f"recipe.judge.server.extra_args must not contain {flag}: {fix}")
        self.port = port or free_port()
        self.argv = [*(command or ("vllm", "serve")), str(model), "--host", host, "--port", str(self.port),
                     "--max-logprobs", str(top_logprobs),
                     "--limit-mm-per-prompt", json.dumps({"image": max_images_per_prompt}),
                     "--enable-prefix-caching", *(["--trust-remote-code"] if trust_remote_code else []), *extra_args]
        self.settings = {"extra_args": extra_args, "trust_remote_code": bool(trust_remote_code),
                         "max_images_per_prompt": max_images_per_prompt}
        self._api_key = api_key or None
        connect = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        self.base_url = f"http://{connect}:{self.port}"
        self.startup_timeout, self.stop_timeout = startup_timeout, stop_timeout
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="vllm-serve-", suffix=".log")
            os.close(fd)
        self.log_path = Path(log_path)
        self.process: subprocess.Popen | None = None

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.is_file():
            return ""
        with open(self.log_path, errors="replace") as handle:
            tail = "".join(deque(handle, maxlen=lines))
        return tail.replace(self._api_key, "<api key>") if self._api_key else tail

    def _healthy(self) -> bool:
        try:
            return requests.get(self.base_url + "/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def __enter__(self) -> "VllmServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}
        if self._api_key:
            env["VLLM_API_KEY"] = self._api_key
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                            env=env)
        deadline = time.monotonic() + self.startup_timeout
        while not self._healthy():
            if self.process.poll() is not None:
                raise RuntimeError(f"the judge server exited with code {self.process.returncode} before it was ready: "
                                   f"{' '.join(self.argv)}\nlast lines of {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"the judge server was not healthy at {self.base_url}/health after "
                                   f"{self.startup_timeout:.0f} s\nlast lines of {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.5)
        return self

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, self.stop_timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
            try:
                process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    def __exit__(self, *exc) -> None:
        self.stop()
