"""A model served behind an OpenAI-compatible chat-completions API, evaluated like a local one.

    model = EndpointModel("http://127.0.0.1:8080/v1", "smollm2")
    model.chat([[{"role": "user", "content": "Hi"}]], max_new_tokens=32)   # -> ["Hello! ..."]

Greedy (temperature 0), requests in parallel through the shared ChatClient (ftguard/client.py: key from the
environment variable `api_key_env`, retries, Retry-After, strict parsing of replies, scrubbed errors).
Endpoints give no log-likelihoods and no tokenizer, so `load_model` returns `(EndpointModel, None)`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from ftguard.client import ChatClient, EndpointError, run_parallel
from ftguard.errors import FtguardError, ModelError

log = logging.getLogger(__name__)
Messages = list[dict[str, str]]
CHARS_PER_TOKEN = 3.0  # conservative for fitting prompts without a tokenizer (English is about 4)


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
    _client: ChatClient | None = field(default=None, init=False, repr=False, compare=False)

    def client(self) -> ChatClient:
        if self._client is None:
            self._client = ChatClient(self.base_url, self.name, self.api_key_env, self.timeout_s, self.max_retries,
                                      self.retry_backoff_s)
            try:
                self._client.key()  # a missing key is an error before the first request, naming the variable
            except FtguardError as e:
                raise ModelError(str(e)) from None
            log.info("endpoint: model %r at %s (key from $%s)", self.name, self.base_url, self.api_key_env)
        return self._client

    def chat(self, prompts: list[Messages], max_new_tokens: int, max_prompt_tokens: int | None = None) -> list[str]:
        """Greedy replies to `prompts` (chat messages each), `max_new_tokens` at most, in input order.

        Raises ModelError naming the model and what came back when the server cannot be used; the caller
        keeps what earlier batches returned, so re-running the command resumes.
        """
        client = self.client()
        try:
            return run_parallel(lambda p: client.complete(fit_messages_estimate(p, max_prompt_tokens), max_new_tokens),
                                prompts, self.concurrency, client.cancel)
        except EndpointError as e:
            raise ModelError(f"{e}; re-run the same command to resume") from None
