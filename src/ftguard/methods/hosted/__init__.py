"""Hosted fine-tuning as methods: the training runs on a service, the result is evaluated where it is served.

    openai_ft     OpenAI's fine-tuning API (official `openai` SDK)
    together_ft   Together AI's fine-tuning API, LoRA or full (official `together` SDK: pip install 'ftguard[hosted]')
    served        a model fine-tuned anywhere and served behind an OpenAI-compatible API (nothing is trained)

Each exports the study's training data to chat fine-tuning JSONL, checks it against the service's format
rules (export.py), prints the token count and expected cost, submits one job only with `--yes` or
`submit: true`, and polls it to the end; the job id lives in RUN_DIR/models/<label>/job.json, so a restarted
ftguard resumes it and never submits twice (jobs.py).

    python -m ftguard.methods.hosted cancel RUN_DIR/models/openai_ft     # cancel a running job
"""

from __future__ import annotations

from typing import Any

from ftguard.methods.hosted import openai_ft, served, together_ft  # noqa: F401  (registration)
from ftguard.methods.hosted.jobs import JobState, Service, cancel_job
from ftguard.methods.hosted.method import HostedMethod, Plan


def make_service(name: str, base_url: str, api_key_env: str, job_params: dict[str, Any] | None = None) -> Service:
    """The Service for a job state's `service` field ("openai" or "together")."""
    factories = {"openai": openai_ft.OpenAIService, "together": together_ft.TogetherService}
    if name not in factories:
        raise ValueError(f"unknown hosted service {name!r}; known: {', '.join(factories)}")
    return factories[name](base_url, api_key_env, dict(job_params or {}))


def service_for(state: JobState) -> Service:
    """The Service a recorded job runs on (for `cancel`)."""
    return make_service(state.service, state.base_url, state.api_key_env)


__all__ = ["HostedMethod", "Plan", "Service", "cancel_job", "make_service", "service_for"]
