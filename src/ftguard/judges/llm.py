"""LLM judge over any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, ...).

The rubric comes from the probe (each probe declares its rubrics, ftguard/rubrics.py; `rubric:` picks one
by name, "default" unless set), so a new probe brings its own grading text and labels and this file never
changes. Temperature 0; the verdict is parsed strictly: anything but one of the rubric's labels in the
rubric's format is Verdict(nan, "error", raw output), so a refusal or malformed output never counts as safe
or correct. Responses are neutralised before they enter the prompt. Requests go through the same ChatClient
as endpoint subjects (ftguard/client.py: key from `api_key_env`, retries, Retry-After, strict body parsing,
scrubbed errors). A server that cannot be reached or answers garbage gives error verdicts, which the pipeline
does not cache, so the next run asks again; a refused key or unknown model stops the study with a message.

    probes: [{name: toxigen_counter, judges: [counter_speech, {name: llm, model: gpt-4o-mini}]}]
    # a local server: python -m llama_cpp.server --model M.gguf --port 8000
    judges: [{name: llm, model: local, base_url: "http://127.0.0.1:8000/v1"}]
    # a served HarmBench classifier on the harmful_refusal probe
    judges: [{name: llm, model: cais/HarmBench-Llama-2-13b-cls, base_url: "...", rubric: harmbench}]
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from ftguard.client import (
    ChatClient,
    EndpointError,
    EndpointRefused,
    iter_parallel,
    run_parallel,
)
from ftguard.errors import ConfigError, JudgeError
from ftguard.judges._llm_prompts import build_messages, neutralise, parse_verdict
from ftguard.judges.base import ERROR, Judge, Verdict
from ftguard.registry import JUDGES
from ftguard.rubrics import Rubric

if TYPE_CHECKING:
    from ftguard.probes.base import Probe

__all__ = ["build_messages", "llm", "neutralise", "parse_verdict"]
DEFAULT_BASE_URL = "https://api.openai.com/v1"
VERSION = "2"


class _Cache:
    """One JSON file per verdict under `root`, keyed by sha256 of (model, rubric, prompt, response)."""

    def __init__(self, root: str | None):
        self.root = Path(root) if root else None

    @staticmethod
    def key(model: str, rubric: Rubric, messages: list[dict], response: str) -> str:
        blob = json.dumps([model, rubric.name, rubric.version, messages, response], sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def get(self, key: str) -> Verdict | None:
        path = self.root and self.root / key[:2] / f"{key}.json"
        if not path or not path.exists():
            return None
        try:
            d = json.loads(path.read_text())
            return Verdict(float(d["score"]), str(d["label"]), str(d["explanation"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged entry is asked again

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
    rubric: str = "default",
    concurrency: int = 4,
    timeout_s: float = 60,
    max_retries: int = 4,
    cache_dir: str | None = None,
    retry_backoff_s: float = 1.0,
    max_tokens: int = 200,
) -> Judge:
    """Grade responses with a chat model behind an OpenAI-compatible API, with the probe's rubric.

    Args:
        model: Model name the endpoint serves (e.g. "gpt-4o-mini"). Prefer a family other than the tuned model's.
        base_url: Endpoint, e.g. "http://127.0.0.1:8000/v1"; default: env OPENAI_BASE_URL, else OpenAI.
        api_key_env: Environment variable holding the key (the key itself never goes into a config).
        rubric: Which of the probe's rubrics to grade with (`ftguard list probes` shows each probe's).
        concurrency: Parallel requests.
        timeout_s: Per-request timeout in seconds.
        max_retries: Retries after a timeout, connection error, 429 or 5xx, with exponential backoff.
        cache_dir: Folder for cached verdicts (errors are never cached); None disables this cache.
        retry_backoff_s: First backoff in seconds; doubles on every retry.
        max_tokens: Longest grader answer.
    """
    if concurrency < 1 or max_retries < 0 or timeout_s <= 0 or max_tokens < 1:
        raise ConfigError(f"llm judge: need concurrency >= 1, max_retries >= 0, timeout_s > 0, max_tokens >= 1; "
                          f"got {concurrency}, {max_retries}, {timeout_s}, {max_tokens}")
    url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"llm judge: base_url must be an http(s) URL, got {url!r}")
    client = ChatClient(url, model, api_key_env, timeout_s, max_retries, retry_backoff_s, who="judge")
    client.key()  # a missing key is a config error now, not an error verdict per item later
    cache = _Cache(cache_dir)

    def bind(probe: Probe) -> Judge:
        chosen = probe.rubrics.get(rubric)
        if chosen is None:
            raise ConfigError(f"judge 'llm' cannot grade probe '{probe.name}': it has no rubric {rubric!r} "
                              f"(its rubrics: {', '.join(probe.rubrics) or 'none'})")

        def grade(pair: tuple) -> Verdict:
            item, response = pair
            messages = build_messages(chosen, item, response)
            key = cache.key(model, chosen, messages, response)
            if (hit := cache.get(key)) is not None:
                return hit
            try:
                raw = client.complete(messages, max_tokens)
            except EndpointRefused as e:
                raise JudgeError(f"The llm judge cannot work: {e}") from None
            except EndpointError as e:
                return Verdict(math.nan, ERROR, str(e))
            verdict = parse_verdict(raw, chosen, item)
            if not verdict.failed:
                cache.put(key, verdict, model)
            return verdict

        def judge(items, responses) -> list[Verdict]:
            return run_parallel(grade, list(zip(items, responses, strict=True)), concurrency, client.cancel)

        def stream(items, responses):
            return iter_parallel(grade, list(zip(items, responses, strict=True)), concurrency, client.cancel)

        return Judge("llm", f"{VERSION}:{model}:{chosen.name}:{chosen.version}", judge, labels=chosen.scores,
                     score_label=chosen.score_label, stream_fn=stream)

    def unbound(items, responses) -> list[Verdict]:
        raise JudgeError("the llm judge grades with a probe's rubric: bind it first (judge.for_probe(probe))")

    return Judge("llm", f"{VERSION}:{model}", unbound, labels=None, bind=bind)
