"""The resumable fine-tuning job shared by the hosted methods: upload, submit once, poll, finish or fail.

State lives in RUN_DIR/models/<label>/job.json (file id, job id, status, fine-tuned model name, the env variable
that holds the key but never the key). A job id in that file is never submitted again: a restarted ftguard
resumes polling it. The state is written *before* the create call ("submitting"), so a crash between the
service accepting the job and the file being saved is recovered by looking the job up by its training file.

    state = run_job(service, folder, train_file, request=..., allow_submit=True, cost_line="$3.71", poll=PollConfig())
    cancel_job(folder)          # or: python -m ftguard.methods.hosted cancel RUN_DIR/models/openai_ft
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Protocol

from rich.console import Console

from ftguard.errors import ConfigError, FtguardError

log = logging.getLogger(__name__)
console = Console(stderr=True)
JOB_FILE = "job.json"
FINAL = ("succeeded", "failed", "cancelled")
_sleep = time.sleep  # between status checks (the tests replace it to stop a run mid-poll)


@dataclass
class JobStatus:
    """A service's answer, normalised: status is queued | running | succeeded | failed | cancelled."""

    status: str
    raw_status: str
    model: str | None = None  # the fine-tuned model's name, once succeeded
    error: str | None = None
    trained_tokens: int | None = None
    progress: str | None = None  # the latest event message, for the progress line


class Service(Protocol):
    """A fine-tuning API: OpenAI and Together AI implement it over their official SDKs."""

    name: str  # "openai" | "together"

    def upload(self, path: Path) -> str: ...  # -> file id
    def create(self, file_id: str) -> str: ...  # -> job id
    def find(self, file_id: str) -> str | None: ...  # a job already created from this file, if any
    def retrieve(self, job_id: str) -> JobStatus: ...
    def cancel(self, job_id: str) -> JobStatus: ...


@dataclass
class JobState:
    service: str
    base_url: str
    api_key_env: str  # the variable's name; the key itself is never written
    base_model: str
    request: str  # fingerprint of what was submitted: file content, base model, hyperparameters, seed
    file_id: str | None = None
    job_id: str | None = None
    status: str = "new"  # new | uploaded | submitting | queued | running | succeeded | failed | cancelled
    raw_status: str | None = None
    fine_tuned_model: str | None = None
    error: str | None = None
    trained_tokens: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)  # (time, status) transitions

    def note(self, status: str, raw: str | None = None) -> None:
        if not self.history or self.history[-1]["status"] != (raw or status):
            self.history.append({"t": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "status": raw or status})
        self.status, self.raw_status = status, raw


@dataclass(frozen=True)
class PollConfig:
    interval_s: float = 30.0  # first wait between status checks
    max_interval_s: float = 300.0  # the wait grows by `factor` up to this
    factor: float = 1.5
    timeout_s: float = 24 * 3600.0  # give up polling (the job keeps running; a re-run resumes)


def load_state(folder: Path) -> JobState | None:
    path = Path(folder) / JOB_FILE
    if not path.is_file():
        return None
    raw = json.loads(path.read_text())
    known = {f.name for f in fields(JobState)}
    return JobState(**{k: v for k, v in raw.items() if k in known})


def save_state(folder: Path, state: JobState) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp") as f:
        json.dump(asdict(state), f, indent=2)
    os.replace(f.name, folder / JOB_FILE)  # atomic: a kill never leaves half a job file


def _describe(state: JobState) -> str:
    return f"{state.service} job {state.job_id} ({state.raw_status or state.status})"


def start_state(folder: Path, fresh: JobState) -> JobState:
    """The saved state if it is for the same request; a fresh one if nothing was submitted yet."""
    state = load_state(folder)
    if state is None:
        return fresh
    if state.request != fresh.request:
        if state.job_id is None and state.status != "submitting":
            return fresh  # only a file was uploaded for other settings: nothing paid, start over
        raise ConfigError(
            f"{folder / JOB_FILE} records {_describe(state)} for other settings (data, base model or "
            "hyperparameters changed). ftguard never submits a second job into one run folder: give this "
            f"method a new `tag`, or delete that job.json (cancel a running job first: "
            f"python -m ftguard.methods.hosted cancel {folder}).")
    if state.status in ("failed", "cancelled"):
        raise FtguardError(f"{_describe(state)} ended as {state.status}: {state.error or 'no reason given'}. "
                           f"To submit a new (paid) job, delete {folder / JOB_FILE} and re-run.")
    return state


def submit(service: Service, folder: Path, state: JobState, train_file: Path, *, allow_submit: bool,
           cost_line: str) -> JobState:
    """Make sure exactly one job exists for `state`: adopt one found after a crash, or upload and create."""
    if state.job_id:
        return state
    if state.status == "submitting" and state.file_id:  # killed around the create call: did it go through?
        found = service.find(state.file_id)
        if found:
            console.log(f"found {state.service} job {found} created before a restart; resuming it")
            state.job_id = found
            state.note("queued")
            save_state(folder, state)
            return state
    if not allow_submit:
        raise ConfigError(f"{state.service} fine-tuning of {state.base_model} is a paid job ({cost_line}). "
                          "Nothing was submitted. Re-run with --yes, or set `submit: true` on the method, to "
                          "submit it; `ftguard run CONFIG --dry-run` shows the file, tokens and cost.")
    if not state.file_id:
        console.log(f"uploading {train_file} to {state.service}")
        state.file_id = service.upload(train_file)
        state.note("uploaded")
        save_state(folder, state)
    state.note("submitting")
    save_state(folder, state)  # before create: a restart looks the job up instead of creating another
    state.job_id = service.create(state.file_id)
    state.note("queued")
    save_state(folder, state)
    console.log(f"submitted {_describe(state)} for {state.base_model} ({cost_line}); job id saved in "
                f"{folder / JOB_FILE}")
    return state


def poll(service: Service, folder: Path, state: JobState, cfg: PollConfig) -> JobState:
    """Check the job with growing waits until it finishes; a failed or cancelled job raises FtguardError."""
    assert state.job_id is not None
    t0, wait = time.monotonic(), cfg.interval_s
    while True:
        got = service.retrieve(state.job_id)
        changed = (got.status, got.raw_status) != (state.status, state.raw_status)
        state.note(got.status, got.raw_status)
        state.fine_tuned_model = got.model or state.fine_tuned_model
        state.error = got.error or state.error
        state.trained_tokens = got.trained_tokens or state.trained_tokens
        if changed or got.status in FINAL:
            save_state(folder, state)
        if got.status == "succeeded":
            if not state.fine_tuned_model:
                raise FtguardError(f"{_describe(state)} succeeded but names no fine-tuned model")
            console.log(f"{_describe(state)}: fine-tuned model {state.fine_tuned_model}")
            return state
        if got.status in ("failed", "cancelled"):
            raise FtguardError(f"{_describe(state)} {got.status}: {got.error or 'no reason given'}. "
                               f"To submit a new (paid) job, delete {folder / JOB_FILE} and re-run.")
        elapsed = time.monotonic() - t0
        if elapsed > cfg.timeout_s:
            raise FtguardError(f"{_describe(state)} still not finished after {elapsed / 3600:.1f} h. It keeps "
                               "running on the service: re-run the same command to resume waiting.")
        detail = f"; {got.progress}" if got.progress else ""
        console.log(f"{_describe(state)}, {elapsed / 60:.1f} min{detail}; next check in {wait:.0f} s")
        _sleep(wait)
        wait = min(wait * cfg.factor, cfg.max_interval_s)


def run_job(service: Service, folder: Path, train_file: Path, fresh: JobState, *, allow_submit: bool,
            cost_line: str, poll_cfg: PollConfig) -> JobState:
    """Resume or start the job for `fresh.request` in `folder` and wait for it; returns the finished state."""
    state = start_state(folder, fresh)
    state = submit(service, folder, state, train_file, allow_submit=allow_submit, cost_line=cost_line)
    if state.status == "succeeded" and state.fine_tuned_model:
        return state
    return poll(service, folder, state, poll_cfg)


def cancel_job(folder: Path, service: Service | Callable[[JobState], Service]) -> JobState:
    """Cancel the job recorded in `folder`/job.json; the state file keeps the outcome."""
    state = load_state(folder)
    if state is None or not state.job_id:
        raise FtguardError(f"{Path(folder) / JOB_FILE}: no submitted job recorded here")
    if state.status in FINAL:
        raise FtguardError(f"{_describe(state)} already ended as {state.status}; nothing to cancel")
    if callable(service) and not hasattr(service, "cancel"):
        service = service(state)  # built from the recorded state: which service, where, which key variable
    got = service.cancel(state.job_id)
    state.note(got.status, got.raw_status)
    state.error = state.error or "cancelled by the user"
    save_state(folder, state)
    return state
