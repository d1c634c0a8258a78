"""LLM judge over any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, ...).

One rubric per probe category (see `_llm_prompts.RUBRICS`), temperature 0, a JSON verdict parsed strictly:
anything but `{"label": <rubric label>, "reason": ...}` is Verdict(nan, "error", raw output), so a refusal or
malformed output never counts as safe or correct. Responses are neutralised before they enter the prompt.
Timeouts, 429 and 5xx are retried with exponential backoff; verdicts are cached on disk.

    ftguard run configs/smoke.yaml 'probes[0].judge={name: llm, model: gpt-4o-mini}'
    # a local server: python -m llama_cpp.server --model M.gguf --port 8000
    #   judge: {name: llm, model: local, base_url: http://127.0.0.1:8000/v1}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ftguard.apikeys import api_key
from ftguard.errors import ConfigError, JudgeError
from ftguard.judges._llm_prompts import RUBRICS, Rubric, build_messages, neutralise, parse_verdict
from ftguard.judges.base import FunctionJudge, Judge, Verdict
from ftguard.registry import JUDGES

__all__ = ["RUBRICS", "build_messages", "llm", "neutralise", "parse_verdict"]

def _resolve_key(base_url: str | None, api_key_env: str) -> str:
    key = api_key(base_url, api_key_env)
    if key:
        return key
    where = base_url or "the default OpenAI endpoint"
    raise JudgeError(f"The llm judge needs an API key for {where}: set the environment variable {api_key_env} "
                     f"(or name another one with api_key_env=...).")


class _Cache:
    """One JSON file per verdict under `root`, keyed by sha256 of (model, rubric, prompt, response)."""

    def __init__(self, root: str | None):
        self.root = Path(root) if root else None

    @staticmethod
    def key(model: str, rubric: Rubric, messages: list[dict], response: str) -> str:
        blob = json.dumps([model, rubric.category, rubric.version, messages, response], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Verdict | None:
        path = self.root and self.root / key[:2] / f"{key}.json"
        if not path or not path.exists():
            return None
        d = json.loads(path.read_text())
        return Verdict(d["score"], d["label"], d["explanation"])

    def put(self, key: str, verdict: Verdict, model: str) -> None:
        if not self.root:
            return
        folder = self.root / key[:2]
        folder.mkdir(parents=True, exist_ok=True)
        record = {"score": verdict.score, "label": verdict.label, "explanation": verdict.explanation, "model": model}
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
            json.dump(record, f)
        os.replace(f.name, folder / f"{key}.json")  # atomic: parallel workers never see half a file


@JUDGES.register("llm")
def llm(
    model: str,
    base_url: str | None = None,
    api_key_env: str = "OPENAI_API_KEY",
    concurrency: int = 4,
    timeout_s: float = 60,
    max_retries: int = 4,
    cache_dir: str | None = None,
    retry_backoff_s: float = 1.0,
) -> Judge:
    """Grade responses with a chat model behind an OpenAI-compatible API, one rubric per probe category.

    Args:
        model: Model name the endpoint serves (e.g. "gpt-4o-mini"). Prefer a family other than the tuned model's.
        base_url: Endpoint, e.g. "http://127.0.0.1:8000/v1"; default: env OPENAI_BASE_URL, else OpenAI.
        api_key_env: Environment variable holding the key (the key itself never goes into a config).
        concurrency: Parallel requests.
        timeout_s: Per-request timeout in seconds.
        max_retries: Retries after a timeout, connection error, 429 or 5xx, with exponential backoff.
        cache_dir: Folder for cached verdicts; None disables the cache.
        retry_backoff_s: First backoff in seconds; doubles on every retry.
    """
    import openai  # imported here so that importing ftguard.judges stays cheap

    base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = _resolve_key(base_url, api_key_env)
    if concurrency < 1 or max_retries < 0 or timeout_s <= 0:
        raise ConfigError(f"llm judge: need concurrency >= 1, max_retries >= 0, timeout_s > 0; got {concurrency}, "
                         f"{max_retries}, {timeout_s}")
    retryable = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                 openai.InternalServerError)
    fatal = (openai.AuthenticationError, openai.PermissionDeniedError, openai.NotFoundError)
    cache = _Cache(cache_dir)
    client_box: list = []
    lock = threading.Lock()

    def client():
        with lock:  # built on first use: the factory itself makes no connection
            if not client_box:
                client_box.append(openai.OpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s,
                                                max_retries=0))
            return client_box[0]

    def ask(messages: list[dict]) -> str:
        for attempt in range(max_retries + 1):
            try:
                out = client().chat.completions.create(model=model, messages=messages, temperature=0,
                                                       max_tokens=200)
                return out.choices[0].message.content or ""
            except retryable:
                if attempt == max_retries:
                    raise
                time.sleep(retry_backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def grade(item, response: str) -> Verdict:
        rubric = RUBRICS.get(item.category)
        if rubric is None:
            raise JudgeError(f"The llm judge has no rubric for category {item.category!r} (item {item.id}). "
                             f"Known: {', '.join(RUBRICS)}")
        messages = build_messages(rubric, item, response)
        key = cache.key(model, rubric, messages, response)
        if (hit := cache.get(key)) is not None:
            return hit
        try:
            raw = ask(messages)
        except fatal as e:
            raise JudgeError(f"The llm judge cannot use model {model!r} at {base_url or 'OpenAI'}: "
                             f"{type(e).__name__}: {e}. Check the model name and {api_key_env}.") from None
        except (*retryable, openai.APIError) as e:
            return Verdict(math.nan, "error", f"request failed after {max_retries + 1} tries: {type(e).__name__}: {e}")
        verdict = parse_verdict(raw, rubric)
        if not math.isnan(verdict.score):
            cache.put(key, verdict, model)  # failures are not cached, so they are retried on the next run
        return verdict

    def judge(items, responses) -> list[Verdict]:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            return list(pool.map(grade, items, responses))

    return FunctionJudge("llm", f"1:{model}", judge)
