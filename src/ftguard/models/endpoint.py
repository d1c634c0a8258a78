"""A model served behind an OpenAI-compatible chat-completions API, evaluated like a local one.

    model = EndpointModel("http://127.0.0.1:8080/v1", "smollm2")
    model.chat([[{"role": "user", "content": "Hi"}]], max_new_tokens=32)   # -> ["Hello! ..."]

Greedy (temperature 0), requests in parallel, timeouts / connection errors / 429 / 5xx retried with exponential
backoff. The key is read from the environment variable `api_key_env` when the client is built; it is never
stored on the object, logged, or put into an error message (local hosts get a dummy key). Endpoints give no
log-likelihoods and no tokenizer, so `load_model` returns `(EndpointModel, None)`.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ftguard.errors import ModelError

log = logging.getLogger(__name__)
Messages = list[dict[str, str]]
CHARS_PER_TOKEN = 3.0  # conservative for fitting prompts without a tokenizer (English is about 4)


def resolve_api_key(base_url: str, api_key_env: str) -> str:
    """The key from `api_key_env`; a dummy one for servers on this machine."""
    from ftguard.apikeys import api_key

    key = api_key(base_url, api_key_env)
    if key is None:
        raise ModelError(f"The endpoint {base_url} needs an API key: set the environment variable {api_key_env} "
                         "(or name another one with model.api_key_env / --api-key-env).")
    return key


def scrub(text: str, secret: str | None) -> str:
    """`text` with every occurrence of the key replaced, for error messages from servers that echo it."""
    return text.replace(secret, "***") if secret and len(secret) >= 4 else text


def fit_messages_estimate(messages: Messages, max_prompt_tokens: int | None) -> Messages:
    """Drop the oldest exchanges (never the system prompt or the last message) until the prompt's estimated
    size fits: the rule of `generation.fit_messages`, with characters / CHARS_PER_TOKEN for the token count."""
    if not max_prompt_tokens:
        return messages
    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    turns = messages[len(system):]

    def size(ms: Messages) -> float:
        return sum(len(m["content"]) / CHARS_PER_TOKEN + 4 for m in ms)

    while len(turns) > 1 and size(system + turns) > max_prompt_tokens:
        turns = turns[2:] if len(turns) > 2 else turns[1:]
    return system + turns


@dataclass
class EndpointModel:
    """A served model: `chat(prompts, max_new_tokens)` returns one greedy reply per prompt, in order."""

    base_url: str
    name: str
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = 4
    timeout_s: float = 120.0
    max_retries: int = 4
    retry_backoff_s: float = 1.0
    _client: Any = field(default=None, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    def client(self) -> Any:
        with self._lock:  # built on first use: constructing the model makes no connection
            if self._client is None:
                import openai

                if logging.getLogger().level > logging.DEBUG:  # one INFO line per request drowns the progress
                    for name in ("httpx", "httpx2"):
                        logging.getLogger(name).setLevel(logging.WARNING)
                self._client = openai.OpenAI(base_url=self.base_url, api_key=resolve_api_key(self.base_url,
                                             self.api_key_env), timeout=self.timeout_s, max_retries=0)
            return self._client

    def chat(self, prompts: list[Messages], max_new_tokens: int, max_prompt_tokens: int | None = None) -> list[str]:
        """Greedy replies to `prompts` (chat messages each), `max_new_tokens` at most, in input order."""
        client = self.client()
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(lambda p: self._ask(client, fit_messages_estimate(p, max_prompt_tokens),
                                                     max_new_tokens), prompts))

    def _ask(self, client: Any, messages: Messages, max_new_tokens: int) -> str:
        import openai

        retryable = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                     openai.InternalServerError)
        where = f"model {self.name!r} at {self.base_url}"
        for attempt in range(self.max_retries + 1):
            try:
                out = client.chat.completions.create(model=self.name, messages=messages, temperature=0,
                                                     max_tokens=max_new_tokens)
                return (out.choices[0].message.content or "").strip()
            except retryable as e:
                if attempt == self.max_retries:
                    raise ModelError(f"{where}: no answer after {attempt + 1} tries "
                                     f"({type(e).__name__}: {scrub(str(e), client.api_key)[:300]}); "
                                     "re-run the same command to resume") from None
                delay = self.retry_backoff_s * 2**attempt
                log.warning("%s: %s, retrying in %.1f s", where, type(e).__name__, delay)
                time.sleep(delay)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                raise ModelError(f"{where} refused the key from {self.api_key_env}: "
                                 f"{scrub(str(e), client.api_key)[:300]}") from None
            except openai.NotFoundError as e:
                raise ModelError(f"{where}: not found ({scrub(str(e), client.api_key)[:300]}); check the model "
                                 f"name the server serves (GET {self.base_url}/models lists them)") from None
            except openai.APIError as e:
                raise ModelError(f"{where}: {type(e).__name__}: {scrub(str(e), client.api_key)[:300]}") from None
        raise AssertionError("unreachable")
