"""`openai_ft`: supervised fine-tuning through OpenAI's fine-tuning API, with the official `openai` SDK.

    model: {endpoint: https://api.openai.com/v1, name: gpt-4o-mini-2024-07-18}   # the base, served
    methods: [{name: openai_ft, n_epochs: 3, prices: {gpt-4o-mini-2024-07-18: 3.0}}]
    ftguard run configs/openai_ft.yaml --dry-run     # the checked file, tokens and cost; submits nothing
    ftguard run configs/openai_ft.yaml --yes         # submits, waits, evaluates ft:gpt-4o-mini-...

Requests: `files.create(purpose="fine-tune")`, `fine_tuning.jobs.create(model, training_file, method={"type":
"supervised", ...hyperparameters}, seed, suffix)`, `jobs.retrieve`, `jobs.list_events`, `jobs.list` (to find a
job created just before a crash) and `jobs.cancel`. The fine-tuned model is then evaluated through chat
completions at the same endpoint as the base model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ftguard.apikeys import require_api_key
from ftguard.client import scrub
from ftguard.errors import ConfigError, FtguardError
from ftguard.methods.base import Method
from ftguard.methods.hosted.export import OPENAI_RULES
from ftguard.methods.hosted.jobs import JobStatus, PollConfig
from ftguard.methods.hosted.method import HostedMethod
from ftguard.registry import METHODS

OPENAI_URL = "https://api.openai.com/v1"
_STATUS = {"validating_files": "queued", "queued": "queued", "running": "running", "succeeded": "succeeded",
           "failed": "failed", "cancelled": "cancelled"}


@dataclass
class OpenAIService:
    """OpenAI's files and fine-tuning endpoints (or a server that follows their shapes, as the tests do)."""

    base_url: str
    api_key_env: str = "OPENAI_API_KEY"
    job_params: dict[str, Any] = field(default_factory=dict)  # model, method, seed, suffix for jobs.create
    name: str = "openai"
    _client: Any = field(default=None, init=False, repr=False)

    def client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(base_url=self.base_url, api_key=require_api_key(self.base_url,
                                         self.api_key_env, f"OpenAI fine-tuning at {self.base_url}"), max_retries=4, timeout=300)
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import openai

        try:
            return fn(*args, **kwargs)
        except openai.APIError as e:
            raise FtguardError(f"OpenAI {what} failed at {self.base_url}: {type(e).__name__}: "
                               f"{scrub(str(e), self.client().api_key)[:400]}") from None

    def upload(self, path: Path) -> str:
        with open(path, "rb") as f:
            return self._call("file upload", self.client().files.create, file=f, purpose="fine-tune").id

    def create(self, file_id: str) -> str:
        return self._call("job creation", self.client().fine_tuning.jobs.create, training_file=file_id,
                          **self.job_params).id

    def find(self, file_id: str) -> str | None:
        jobs = self._call("job listing", self.client().fine_tuning.jobs.list, limit=100)
        return next((j.id for j in jobs.data if j.training_file == file_id and j.status != "cancelled"), None)

    def _status(self, job: Any) -> JobStatus:
        error = f"{job.error.code}: {job.error.message}" if getattr(job, "error", None) else None
        return JobStatus(_STATUS.get(job.status, "running"), job.status, job.fine_tuned_model, error,
                         job.trained_tokens)

    def retrieve(self, job_id: str) -> JobStatus:
        status = self._status(self._call("job status", self.client().fine_tuning.jobs.retrieve, job_id))
        try:
            events = self.client().fine_tuning.jobs.list_events(job_id, limit=1)
            status.progress = events.data[0].message if events.data else None
        except Exception:  # progress is a nicety; the status above is what matters
            pass
        return status

    def cancel(self, job_id: str) -> JobStatus:
        return self._status(self._call("job cancel", self.client().fine_tuning.jobs.cancel, job_id))


@METHODS.register("openai_ft")
def openai_ft(base_model: str | None = None, n_epochs: int = 3, learning_rate_multiplier: float | None = None,
              batch_size: int | None = None, suffix: str | None = "ftguard", base_url: str = OPENAI_URL,
              api_key_env: str = "OPENAI_API_KEY", submit: bool = False, prices: dict[str, float] | None = None,
              max_tokens_per_example: int = 65_536, min_examples: int = 10, eval_endpoint: str | None = None,
              poll_interval_s: float = 30, max_poll_interval_s: float = 300, timeout_h: float = 24) -> Method:
    """Fine-tune on OpenAI (a paid job: needs `submit: true` or `ftguard run --yes`); evaluate the result served.

    Args:
        base_model: Model to fine-tune; default the study's `model.name` (served at `model.endpoint`).
        n_epochs: Passes over the training file (billed tokens = file tokens x n_epochs).
        learning_rate_multiplier: Scale of OpenAI's learning rate; None lets the service choose ("auto").
        batch_size: Examples per step; None lets the service choose ("auto").
        suffix: Up to 64 characters added to the fine-tuned model's name.
        base_url: Fine-tuning API; override for a compatible server (the tests use a local fake).
        api_key_env: Environment variable holding the key (never the key itself).
        submit: Allow this method to submit a paid job without `--yes`.
        prices: USD per 1M training tokens by base model, for the cost estimate printed before submitting.
        max_tokens_per_example: The base model's training context (65,536 for gpt-4o-mini-2024-07-18).
        min_examples: OpenAI's minimum number of training examples (10).
        eval_endpoint: Where the tuned model is evaluated; default the study's `model.endpoint`.
        poll_interval_s: First wait between status checks; it grows 1.5x per check.
        max_poll_interval_s: Longest wait between checks.
        timeout_h: Stop waiting after this long (the job keeps running; re-run to resume).
    """
    if suffix is not None and len(suffix) > 64:
        raise ConfigError(f"openai_ft suffix may have at most 64 characters, got {len(suffix)}: {suffix!r}")
    if n_epochs < 1 or (learning_rate_multiplier is not None and learning_rate_multiplier <= 0):
        raise ConfigError(f"openai_ft needs n_epochs >= 1 and learning_rate_multiplier > 0, got {n_epochs}, "
                          f"{learning_rate_multiplier}")
    hyper: dict[str, Any] = {"n_epochs": n_epochs}
    if learning_rate_multiplier is not None:
        hyper["learning_rate_multiplier"] = learning_rate_multiplier
    if batch_size is not None:
        hyper["batch_size"] = batch_size

    def job_params(model: str, seed: int) -> dict[str, Any]:
        method = {"type": "supervised", "supervised": {"hyperparameters": hyper}}
        return {"model": model, "seed": seed, "method": method} | ({"suffix": suffix} if suffix else {})

    rules = replace(OPENAI_RULES, min_examples=min_examples, max_tokens_per_example=max_tokens_per_example)
    return HostedMethod(service="openai", make_service=OpenAIService, rules=rules, base_model=base_model,
                        n_epochs=n_epochs, base_url=base_url, api_key_env=api_key_env, job_params=job_params,
                        submit=submit, prices=dict(prices or {}),
                        poll=PollConfig(poll_interval_s, max_poll_interval_s, timeout_s=timeout_h * 3600),
                        eval_endpoint=eval_endpoint).as_method()
