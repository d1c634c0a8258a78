"""The one client for OpenAI-compatible chat-completions servers, used by endpoint subjects
(models/endpoint.py) and by the `llm` judge alike: one key resolver, one retry loop, one scrubber.

    client = ChatClient("http://127.0.0.1:8080/v1", "smollm2", api_key_env="OPENAI_API_KEY")
    client.complete([{"role": "user", "content": "Hi"}], max_tokens=32)      # -> "Hello! ..."

- The key comes only from the environment variable the caller names (apikeys.py; local hosts get a dummy
  one); it is scrubbed from every message this module raises, including servers' echoes of the header.
- Timeouts, connection errors, 429 and 5xx are retried with exponential backoff; a `Retry-After` header
  (seconds or an HTTP date) is honoured up to `max_retry_after_s`. A 400 or 422 is the request's fault and
  is not retried. A 401/403/404 raises at once.
- The reply is read from the raw body, never trusted: a body that is not JSON, `choices` empty or null, a
  choice without `message`, content that is not a string all raise `BadReply` naming the server and model
  and showing what came back; lone surrogates are replaced so the text can always be written as UTF-8.
- `cancel()` (Ctrl-C) makes every waiting or retrying call stop within a fraction of a second; once one
  request has failed after all its retries, the others of the same client fail fast instead of each
  waiting out its own timeouts (`dead`), so a dead server costs one timeout, not one per prompt.
"""

from __future__ import annotations

import email.utils
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

from ftguard.apikeys import require_api_key
from ftguard.errors import FtguardError

log = logging.getLogger(__name__)
Messages = list[dict[str, str]]
MAX_SHOWN = 300  # characters of a bad reply shown in an error


class EndpointError(FtguardError):
    """The server could not be used: unreachable after retries, refused the key, rejected the request."""


class EndpointRefused(EndpointError):
    """The server refused the key, or has no such model: nothing will work until the config changes."""


class BadReply(EndpointError):
    """The server answered 200 with something that is not a chat completion."""


class Cancelled(EndpointError):
    """The client was cancelled (Ctrl-C) while a request waited."""


def scrub(text: str, *secrets: str | None) -> str:
    """`text` with every occurrence of each secret (and of a bearer header carrying it) replaced by ***."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


def clean_text(text: str) -> str:
    """`text` with lone surrogates (invalid in UTF-8) replaced by U+FFFD, so it can always be saved."""
    return "".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text) if _has_surrogate(text) else text


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= ch <= "\udfff" for ch in text)


def retry_after_s(headers: Any, cap_s: float) -> float | None:
    """Seconds a `Retry-After` header asks for (a number or an HTTP date), capped; None when absent."""
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, min(float(value), cap_s))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when.timestamp() - time.time(), cap_s))


def parse_completion(body: str, where: str) -> str:
    """The assistant text of a chat-completions body; BadReply (naming `where`) for anything else."""
    def bad(why: str) -> BadReply:
        shown = body if len(body) <= MAX_SHOWN else body[:MAX_SHOWN] + f"... [{len(body) - MAX_SHOWN} more chars]"
        return BadReply(f"{where} answered 200 but {why}: {shown!r}")

    try:
        obj = json.loads(body)
    except (json.JSONDecodeError, ValueError, RecursionError):
        raise bad("the body is not JSON") from None
    if not isinstance(obj, dict):
        raise bad("the body is not a JSON object")
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        raise bad("it has no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise bad("its first choice has no message")
    content = message.get("content")
    if content is None:
        return ""  # a model may legitimately say nothing (e.g. it stopped at once)
    if not isinstance(content, str):
        raise bad(f"the message content is a {type(content).__name__}, not a string")
    return clean_text(content)


@dataclass
class ChatClient:
    base_url: str
    model: str
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = 120.0
    max_retries: int = 4
    retry_backoff_s: float = 1.0
    max_retry_after_s: float = 120.0
    who: str = "model"  # "model" or "judge": how errors name the server's role
    _client: Any = field(default=None, init=False, repr=False)
    _key: str | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    dead: str | None = field(default=None, init=False)  # why the server was given up on

    @property
    def where(self) -> str:
        return f"{self.who} {self.model!r} at {self.base_url}"

    def key(self) -> str:
        if self._key is None:
            self._key = require_api_key(self.base_url, self.api_key_env, self.where)
        return self._key

    def _openai(self) -> Any:
        with self._lock:  # built on first use: constructing the client makes no connection
            if self._client is None:
                import openai

                if logging.getLogger().level > logging.DEBUG:  # one INFO line per request drowns the progress
                    for name in ("httpx", "httpx2"):
                        logging.getLogger(name).setLevel(logging.WARNING)
                timeout = openai.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s))
                self._client = openai.OpenAI(base_url=self.base_url, api_key=self.key(), timeout=timeout,
                                             max_retries=0)
            return self._client

    def cancel(self) -> None:
        """Stop every waiting or retrying call of this client (Ctrl-C)."""
        self._stop.set()
        with self._lock:
            if self._client is not None:
                try:
                    self._client.close()
                except Exception:  # noqa: BLE001 - closing is best effort
                    pass

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise Cancelled(f"{self.where}: cancelled")

    def _error(self, e: Exception) -> str:
        return scrub(f"{type(e).__name__}: {e}", self._key)[:MAX_SHOWN]

    def complete(self, messages: Messages, max_tokens: int, temperature: float = 0.0) -> str:
        """One greedy completion; EndpointError (or BadReply) with a scrubbed message on failure."""
        import openai

        client = self._openai()
        retryable = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError,
                     openai.InternalServerError)
        for attempt in range(self.max_retries + 1):
            if self._stop.is_set():
                raise Cancelled(f"{self.where}: cancelled")
            if self.dead:
                raise EndpointError(f"{self.where}: given up on ({self.dead})")
            try:
                raw = client.chat.completions.with_raw_response.create(
                    model=self.model, messages=messages, temperature=temperature, max_tokens=max_tokens)
                return parse_completion(scrub(raw.text, self._key), self.where)
            except retryable as e:
                if self._stop.is_set():
                    raise Cancelled(f"{self.where}: cancelled") from None
                if attempt == self.max_retries:
                    self.dead = f"no answer after {attempt + 1} tries: {self._error(e)}"
                    raise EndpointError(f"{self.where}: {self.dead}") from None
                wait = retry_after_s(getattr(getattr(e, "response", None), "headers", None), self.max_retry_after_s)
                delay = self.retry_backoff_s * 2**attempt if wait is None else wait
                log.warning("%s: %s, retrying in %.1f s%s", self.where, type(e).__name__, delay,
                            " (Retry-After)" if wait is not None else "")
                self._sleep(delay)
            except (openai.AuthenticationError, openai.PermissionDeniedError) as e:
                raise EndpointRefused(f"{self.where} refused the key from {self.api_key_env}: {self._error(e)}") from None
            except openai.NotFoundError as e:
                raise EndpointRefused(f"{self.where}: not found ({self._error(e)}); check the model name the "
                                    f"server serves (GET {self.base_url.rstrip('/')}/models lists them)") from None
            except (openai.BadRequestError, openai.UnprocessableEntityError) as e:
                raise EndpointError(f"{self.where} rejected the request: {self._error(e)}") from None
            except openai.APIError as e:
                raise EndpointError(f"{self.where}: {self._error(e)}") from None
        raise AssertionError("unreachable")


def iter_parallel(fn: Callable[[Any], Any], args: list[Any], workers: int,
                  cancel: Callable[[], None]) -> Iterator[tuple[int, Any]]:
    """(index, fn(args[index])) as each finishes, on `workers` threads; Ctrl-C or an error cancels the rest
    without waiting for requests in flight (see run_parallel)."""
    pool = ThreadPoolExecutor(max_workers=workers)
    futures = {pool.submit(fn, a): i for i, a in enumerate(args)}
    try:
        for f in as_completed(futures):
            yield futures[f], f.result()
    except BaseException:
        for f in futures:
            f.cancel()
        if not all(f.done() for f in futures):
            cancel()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def run_parallel(fn: Callable[[Any], Any], args: list[Any], workers: int, cancel: Callable[[], None]) -> list[Any]:
    """[fn(a) for a in args] on `workers` threads, in order. Ctrl-C cancels the client and returns at once
    (no waiting for requests in flight); the first error cancels the rest and is raised."""
    out: list[Any] = [None] * len(args)
    for i, result in iter_parallel(fn, args, workers, cancel):
        out[i] = result
    return out
