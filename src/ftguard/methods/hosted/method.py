"""What every hosted method does with a TrainJob: export and check the file, price it, run the job once,
and hand back the fine-tuned model as an EndpointModel so the pipeline evaluates it through the same probes.

The study's own model must be served (`model: {endpoint: ..., name: ...}`): the base is then evaluated through
the same chat-completions API as the tuned model, so before/after are paired.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from rich.console import Console

from ftguard.cache import digest
from ftguard.config import ModelConfig
from ftguard.errors import ConfigError
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.hosted.export import (
    FileReport,
    FormatRules,
    check_chat_file,
    export_chat_jsonl,
)
from ftguard.methods.hosted.jobs import JobState, PollConfig, Service, run_job
from ftguard.models.endpoint import EndpointModel
from ftguard.models.loading import save_method_output

console = Console(stderr=True)
Conversation = list[dict[str, str]]
TRAIN_FILE = "train.jsonl"


@dataclass(frozen=True)
class CostEstimate:
    tokens_per_epoch: int
    n_epochs: int
    price_per_1m: float | None  # USD per 1M training tokens, from the method's `prices` table

    @property
    def training_tokens(self) -> int:
        return self.tokens_per_epoch * self.n_epochs

    @property
    def usd(self) -> float | None:
        return None if self.price_per_1m is None else self.training_tokens / 1e6 * self.price_per_1m

    def line(self, base_model: str) -> str:
        tokens = (f"{self.tokens_per_epoch:,} tokens x {self.n_epochs} epochs = {self.training_tokens:,} "
                  "training tokens")
        if self.usd is None:
            return f"{tokens}; cost unknown: no price for {base_model!r} in the method's `prices`"
        return f"{tokens} x ${self.price_per_1m:.2f}/1M = about ${self.usd:,.2f}"


@dataclass
class Plan:
    """A hosted method's dry run: the checked file, its tokens and the expected cost; nothing submitted."""

    label: str
    service: str
    base_model: str
    base_url: str
    rules: FormatRules
    report: FileReport
    cost: CostEstimate
    submit_allowed: bool
    blockers: list[str] = field(default_factory=list)  # the real run would stop on these
    warnings: list[str] = field(default_factory=list)  # caveats about the comparison


@dataclass(frozen=True)
class HostedMethod:
    """A registered hosted method (openai_ft, together_ft): callable on a TrainJob like any Method."""

    service: str  # "openai" | "together"
    rules: FormatRules
    base_model: str | None
    n_epochs: int
    base_url: str
    api_key_env: str
    job_params: Callable[[str, int], dict[str, Any]]  # (base model, seed) -> what the service's create takes
    submit: bool
    prices: dict[str, float]
    poll: PollConfig
    make_service: Callable[[str, str, dict[str, Any]], Service]  # (base_url, api_key_env, job params) -> Service
    eval_endpoint: str | None = None
    eval_model: str | None = None
    unavailable: Callable[[], str | None] = lambda: None  # why the service's SDK cannot be used, if it cannot
    # parameters that change neither the job nor its result (left out of method keys)
    key_ignores: ClassVar[tuple[str, ...]] = ("submit", "prices", "poll_interval_s", "max_poll_interval_s",
                                              "timeout_h")

    def as_method(self) -> Method:
        """The registered value: trains on the service, so the study's base model may be served."""
        return Method(self, trains_locally=False, key_ignores=self.key_ignores, hosted=self)

    def base_for(self, study_name: str) -> str:
        return self.base_model or study_name

    def prepare(self, conversations: list[Conversation], folder: Path, base_model: str) -> tuple[FileReport,
                                                                                                  CostEstimate]:
        """Export to folder/train.jsonl, check it against the service's rules, count tokens and price it."""
        report = check_chat_file(export_chat_jsonl(conversations, Path(folder) / TRAIN_FILE), self.rules)
        return report, CostEstimate(report.total_tokens, self.n_epochs, self.prices.get(base_model))

    def plan(self, label: str, conversations: list[Conversation], folder: Path, study: ModelConfig,
             allow_paid: bool = False) -> Plan:
        base = self.base_for(study.name_or_path)
        report, cost = self.prepare(conversations, folder, base)
        blockers = [] if study.endpoint else [_not_served(self.service, study.name_or_path, base)]
        missing = self.unavailable()
        blockers += [missing] if missing else []
        warnings = _pairing_warnings(self.service, study.name_or_path, base) if study.endpoint else []
        return Plan(label, self.service, base, self.base_url, self.rules, report, cost,
                    self.submit or allow_paid, blockers, warnings)

    def __call__(self, job: TrainJob) -> TrainResult:
        study = job.model
        if not isinstance(study, EndpointModel):
            raise ConfigError(_not_served(self.service, job.base_name, self.base_for(job.base_name)))
        base = self.base_for(study.name)
        for warning in _pairing_warnings(self.service, study.name, base):
            console.log(f"[yellow]warning[/]: {warning}")
        report, cost = self.prepare(job.train_data, job.output_dir, base)
        params = self.job_params(base, job.seed)
        file_hash = hashlib.sha256(report.path.read_bytes()).hexdigest()
        fresh = JobState(self.service, self.base_url, self.api_key_env, base,
                         request=digest("hosted", self.service, self.base_url, file_hash, params))
        console.log(f"{self.service} fine-tuning of {base}: {report.n_examples} examples, {cost.line(base)}")
        state = run_job(self.make_service(self.base_url, self.api_key_env, params), job.output_dir,
                        report.path, fresh, allow_submit=self.submit or job.allow_paid,
                        cost_line=cost.line(base), poll_cfg=self.poll)
        endpoint = self.eval_endpoint or study.base_url
        key_env = study.api_key_env if endpoint == study.base_url else self.api_key_env
        name = self.eval_model or state.fine_tuned_model
        assert name is not None  # run_job returns only succeeded jobs, which name their model
        save_method_output(job.output_dir, base_name=job.base_name, artifact="endpoint",
                           extra={"endpoint": endpoint, "model": name, "api_key_env": key_env,
                                  "service": self.service, "job_id": state.job_id,
                                  "fine_tuned_model": state.fine_tuned_model})
        tuned = dataclasses.replace(study, base_url=endpoint, name=name, api_key_env=key_env)
        record = {"service": self.service, "job_id": state.job_id, "fine_tuned_model": state.fine_tuned_model,
                  "examples": report.n_examples, "estimated_training_tokens": cost.training_tokens,
                  "trained_tokens": state.trained_tokens, "estimated_usd": cost.usd}
        return TrainResult(tuned, "endpoint", None, None, [record], None)


def _not_served(service: str, study_name: str, base: str) -> str:
    return (f"The hosted method {service}_ft fine-tunes {base} on a service, so the study's base model must be "
            f"served too, to be evaluated through the same API: set model: {{endpoint: <{service} API URL>, "
            f"name: {base}}} (model.name_or_path is now {study_name!r}, not served)")


def _pairing_warnings(service: str, study_name: str, base: str) -> list[str]:
    if base != study_name:
        return [f"{service}_ft fine-tunes {base!r} but the study evaluates {study_name!r} as the base model; "
                "the before/after comparison is only paired if they are the same weights"]
    return []
