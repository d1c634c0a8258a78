"""`together_ft`: LoRA or full fine-tuning through Together AI's fine-tuning API, with the official `together` SDK
(an optional extra: `pip install 'ftguard[hosted]'`).

    model: {endpoint: https://api.together.xyz/v1, name: meta-llama/Meta-Llama-3.1-8B-Instruct-Reference,
            api_key_env: TOGETHER_API_KEY}
    methods: [{name: together_ft, lora: true, lora_r: 16, n_epochs: 1, prices: {...}}]

Requests: `files.upload(purpose="fine-tune")` (the SDK checks the file, then uploads it through a signed URL),
`fine_tuning.create(...)` (the SDK reads the model's limits and a price estimate first), `fine_tuning.retrieve`,
`list_events`, `list` (to find a job created just before a crash) and `cancel`. The tuned model is evaluated
through chat completions at the study's endpoint under its output name; Together serves LoRA fine-tunes of
some base models serverless, others need a dedicated endpoint: set `eval_endpoint` / `eval_model` for those.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from ftguard.apikeys import require_api_key
from ftguard.client import scrub
from ftguard.errors import ConfigError, FtguardError
from ftguard.methods.base import Method
from ftguard.methods.hosted.export import TOGETHER_RULES
from ftguard.methods.hosted.jobs import JobStatus, PollConfig
from ftguard.methods.hosted.method import HostedMethod
from ftguard.registry import METHODS

TOGETHER_URL = "https://api.together.xyz/v1"
INSTALL = "pip install 'ftguard[hosted]'"
_STATUS = {"pending": "queued", "queued": "queued", "running": "running", "compressing": "running",
           "uploading": "running", "cancel_requested": "running", "cancelled": "cancelled", "error": "failed",
           "user_error": "failed", "completed": "succeeded"}


def _unavailable() -> str | None:
    return None if together_available() else f"the together SDK is not installed: {INSTALL}"


def together_available() -> bool:
    return importlib.util.find_spec("together") is not None


def _as_dict(obj: Any) -> dict[str, Any]:
    """A response as its wire JSON (field names as the REST API spells them), whatever the SDK version."""
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj.model_dump(by_alias=True) if hasattr(obj, "model_dump") else dict(obj)


@dataclass
class TogetherService:
    """Together AI's files and fine-tuning endpoints (or a server that follows their shapes, as the tests do)."""

    base_url: str  # OpenAI-style, ending in /v1; the SDK adds /v1 to its paths itself
    api_key_env: str = "TOGETHER_API_KEY"
    job_params: dict[str, Any] = field(default_factory=dict)
    name: str = "together"
    _client: Any = field(default=None, init=False, repr=False)
    _key: str | None = field(default=None, init=False, repr=False)

    def client(self) -> Any:
        if self._client is None:
            if not together_available():
                raise ConfigError(f"The together_ft method needs the together SDK. Install with: {INSTALL}")
            import together

            self._key = require_api_key(self.base_url, self.api_key_env, f"Together fine-tuning at {self.base_url}")
            root = self.base_url.rstrip("/").removesuffix("/v1")
            self._client = together.Together(base_url=root, api_key=self._key, max_retries=4, timeout=300)
        return self._client

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        import together

        try:
            return fn(*args, **kwargs)
        except (together.APIError, ValueError) as e:  # ValueError: the SDK's checks of limits and files
            raise FtguardError(f"Together {what} failed at {self.base_url}: {type(e).__name__}: "
                               f"{scrub(str(e), self._key)[:400]}") from None

    def upload(self, path: Path) -> str:
        return self._call("file upload", self.client().files.upload, file=Path(path), purpose="fine-tune").id

    def create(self, file_id: str) -> str:
        return self._call("job creation", self.client().fine_tuning.create, training_file=file_id,
                          **self.job_params).id

    def find(self, file_id: str) -> str | None:
        jobs = _as_dict(self._call("job listing", self.client().fine_tuning.list)).get("data") or []
        return next((j["id"] for j in jobs if j.get("training_file") == file_id and j.get("status") != "cancelled"),
                    None)

    def _events(self, job_id: str) -> list[dict[str, Any]]:
        try:
            return _as_dict(self.client().fine_tuning.list_events(job_id)).get("data") or []
        except Exception:  # events are for the progress line and error detail only
            return []

    def _status(self, d: dict[str, Any], events: list[dict[str, Any]]) -> JobStatus:
        raw = str(d.get("status"))
        status = _STATUS.get(raw, "running")
        error = next((e.get("message") for e in reversed(events) if e.get("level") in ("error", "legacy_ierror")),
                     None) if status == "failed" else None
        return JobStatus(status, raw, d.get("model_output_name") or d.get("output_name"), error,
                         d.get("token_count"), events[-1].get("message") if events else None)

    def retrieve(self, job_id: str) -> JobStatus:
        d = _as_dict(self._call("job status", self.client().fine_tuning.retrieve, job_id))
        return self._status(d, self._events(job_id))

    def cancel(self, job_id: str) -> JobStatus:
        return self._status(_as_dict(self._call("job cancel", self.client().fine_tuning.cancel, job_id)), [])


@METHODS.register("together_ft")
def together_ft(base_model: str | None = None, n_epochs: int = 1, learning_rate: float = 1e-5, lora: bool = True,
                lora_r: int | None = None, lora_alpha: float | None = None, lora_dropout: float = 0.0,
                lora_trainable_modules: str = "all-linear", batch_size: int | Literal["max"] = "max",
                warmup_ratio: float = 0.0, lr_scheduler_type: Literal["linear", "cosine"] = "cosine",
                min_lr_ratio: float = 0.0, weight_decay: float = 0.0, max_grad_norm: float = 1.0,
                max_seq_length: int | None = None, train_on_inputs: bool | Literal["auto"] = False,
                n_checkpoints: int = 1, suffix: str | None = "ftguard", base_url: str = TOGETHER_URL,
                api_key_env: str = "TOGETHER_API_KEY", submit: bool = False, prices: dict[str, float] | None = None,
                max_tokens_per_example: int | None = None, eval_endpoint: str | None = None,
                eval_model: str | None = None, poll_interval_s: float = 30, max_poll_interval_s: float = 300,
                timeout_h: float = 24) -> Method:
    """Fine-tune on Together AI, LoRA or full (a paid job: needs `submit: true` or `--yes`); evaluate it served.

    Args:
        base_model: Model to fine-tune; default the study's `model.name`. Together's fine-tunable names often
            end in "-Reference" while the serverless base is "-Turbo": evaluate the same weights as you tune.
        n_epochs: Passes over the training file.
        learning_rate: Peak learning rate.
        lora: LoRA adapters (True) or full fine-tuning (False; not offered for every model).
        lora_r: Adapter rank; None: the model's default rank.
        lora_alpha: Adapter scale numerator; None: 2 x rank.
        lora_dropout: Dropout on the adapter input, in [0, 1).
        lora_trainable_modules: "all-linear" or a comma-separated list of module names.
        batch_size: Examples per step, or "max" for the largest the model allows.
        warmup_ratio: Fraction of steps spent warming up the learning rate.
        lr_scheduler_type: "cosine" or "linear".
        min_lr_ratio: Final learning rate as a fraction of the peak.
        weight_decay: Weight decay.
        max_grad_norm: Gradient clipping; 0 disables it.
        max_seq_length: Training sequence length; None: the model's maximum.
        train_on_inputs: False trains on assistant tokens only, as ftguard's local methods do; "auto" lets
            the service decide.
        n_checkpoints: Checkpoints saved during the job.
        suffix: Up to 40 characters added to the fine-tuned model's name.
        base_url: OpenAI-style API URL; override for a compatible server (the tests use a local fake).
        api_key_env: Environment variable holding the key (never the key itself).
        submit: Allow this method to submit a paid job without `--yes`.
        prices: USD per 1M training tokens by base model, for the cost estimate printed before submitting.
        max_tokens_per_example: Reject examples longer than this (None: the service truncates to max_seq_length).
        eval_endpoint: Where the tuned model is served; default the study's `model.endpoint`.
        eval_model: Name it is served under there; default the job's output model name.
        poll_interval_s: First wait between status checks; it grows 1.5x per check.
        max_poll_interval_s: Longest wait between checks.
        timeout_h: Stop waiting after this long (the job keeps running; re-run to resume).
    """
    if suffix is not None and len(suffix) > 40:
        raise ConfigError(f"together_ft suffix may have at most 40 characters, got {len(suffix)}: {suffix!r}")
    if n_epochs < 1 or learning_rate <= 0 or not 0 <= lora_dropout < 1:
        raise ConfigError(f"together_ft needs n_epochs >= 1, learning_rate > 0 and 0 <= lora_dropout < 1; got "
                          f"{n_epochs}, {learning_rate}, {lora_dropout}")
    settings: dict[str, Any] = {
        "n_epochs": n_epochs, "learning_rate": learning_rate, "lora": lora, "batch_size": batch_size,
        "warmup_ratio": warmup_ratio, "lr_scheduler_type": lr_scheduler_type, "min_lr_ratio": min_lr_ratio,
        "weight_decay": weight_decay, "max_grad_norm": max_grad_norm, "train_on_inputs": train_on_inputs,
        "n_checkpoints": n_checkpoints}
    if lora:
        settings |= {"lora_r": lora_r, "lora_alpha": lora_alpha, "lora_dropout": lora_dropout,
                     "lora_trainable_modules": lora_trainable_modules}
    settings |= {k: v for k, v in {"max_seq_length": max_seq_length, "suffix": suffix}.items() if v is not None}

    def job_params(model: str, seed: int) -> dict[str, Any]:
        return {"model": model, "random_seed": seed, **settings}

    rules = replace(TOGETHER_RULES, max_tokens_per_example=max_tokens_per_example)
    return HostedMethod(service="together", make_service=TogetherService, unavailable=_unavailable, rules=rules,
                        base_model=base_model, n_epochs=n_epochs, base_url=base_url, api_key_env=api_key_env,
                        job_params=job_params, submit=submit, prices=dict(prices or {}),
                        poll=PollConfig(poll_interval_s, max_poll_interval_s, timeout_s=timeout_h * 3600),
                        eval_endpoint=eval_endpoint, eval_model=eval_model).as_method()
