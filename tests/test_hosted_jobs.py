"""Hosted fine-tuning jobs against local fakes of the OpenAI and Together AI APIs (tests/hosted_fakes.py):
create, poll to the end, resume after a restart without a second submission, failure and cancel, the paid-job
confirmation, and a whole `ftguard run --yes` study. The real services are never contacted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from hosted_fakes import FakeOpenAI, FakeTogether

import ftguard.methods  # noqa: F401  (registration)
from ftguard.config import ModelConfig, TrainConfig
from ftguard.data import load_train_data
from ftguard.errors import ConfigError, FtguardError, ModelError
from ftguard.methods.base import TrainJob
from ftguard.methods.hosted import jobs, service_for
from ftguard.methods.hosted.jobs import cancel_job
from ftguard.models import EndpointModel, load_model
from ftguard.registry import METHODS

BASE = "gpt-4o-mini-2024-07-18"
TG_BASE = "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference"
OPENAI_KEY, TOGETHER_KEY = "sk-test-Zq93-openai-secret", "tg-test-Xy71-together-secret"
POST_JOBS, POST_TG_JOBS = ("POST", "/v1/fine_tuning/jobs"), ("POST", "/v1/fine-tunes")


@pytest.fixture(autouse=True)
def _keys_and_confirmation(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FTGUARD_TEST_OPENAI_KEY", OPENAI_KEY)
    monkeypatch.setenv("FTGUARD_TEST_TOGETHER_KEY", TOGETHER_KEY)
    yield


@pytest.fixture(scope="module")
def convs() -> list:
    return load_train_data("builtin:sgd_hotels")[:12]


def openai_method(api: FakeOpenAI, **kw):
    params = {"base_url": api.url, "api_key_env": "FTGUARD_TEST_OPENAI_KEY", "submit": True, "poll_interval_s": 0,
              "prices": {BASE: 3.0}} | kw
    return METHODS.create("openai_ft", **params)


def together_method(api: FakeTogether, **kw):
    params = {"base_url": api.url, "api_key_env": "FTGUARD_TEST_TOGETHER_KEY", "submit": True,
              "poll_interval_s": 0} | kw
    return METHODS.create("together_ft", **params)


def train_job(api, folder: Path, convs: list, base: str = BASE, key_env: str = "FTGUARD_TEST_OPENAI_KEY",
              allow_paid: bool = False) -> TrainJob:
    study = EndpointModel(api.url, base, api_key_env=key_env, retry_backoff_s=0.01)
    return TrainJob(model=study, tokenizer=None, train_data=convs, train=TrainConfig(), lr=1e-5, seed=0,
                    max_seq_len=384, output_dir=folder, base_name=base, allow_paid=allow_paid)


def stop_after_checks(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    """Kill the run (as Ctrl-C or a crash would) on the n-th wait between status checks."""
    calls = []

    def sleep(_: float) -> None:
        calls.append(1)
        if len(calls) >= n:
            raise KeyboardInterrupt

    monkeypatch.setattr(jobs, "_sleep", sleep)


def state(folder: Path) -> dict:
    return json.loads((folder / "job.json").read_text())


def no_key_anywhere(root: Path) -> None:
    for f in root.rglob("*"):
        if f.is_file():
            text = f.read_bytes()
            assert OPENAI_KEY.encode() not in text and TOGETHER_KEY.encode() not in text, f


def test_openai_job_is_created_polled_and_evaluated_served(tmp_path: Path, convs: list) -> None:
    folder = tmp_path / "models" / "openai_ft"
    with FakeOpenAI(key=OPENAI_KEY) as api:
        result = openai_method(api, learning_rate_multiplier=0.5, suffix="hotels")(train_job(api, folder, convs))
        assert api.count("POST", "/v1/files") == 1 and api.count(*POST_JOBS) == 1 and not api.bad_auth
        body = api.bodies(*POST_JOBS)[0]
        assert body == {"model": BASE, "training_file": "file-1", "seed": 0, "suffix": "hotels",
                        "method": {"type": "supervised", "supervised": {"hyperparameters": {
                            "n_epochs": 3, "learning_rate_multiplier": 0.5}}}}
        assert api.files["file-1"] == {"purpose": "fine-tune", "data": (folder / "train.jsonl").read_bytes()}
        assert api.count("GET", "/v1/fine_tuning/jobs/ftjob-1") == 4  # queued, running, running, succeeded
        assert result.artifact == "endpoint" and isinstance(result.model, EndpointModel)
        assert result.model.name == f"ft:{BASE}:ftguard-test:hotels:1abc" and result.model.base_url == api.url
        assert result.model.chat([[{"role": "user", "content": "hi"}]], 8) == [
            "Which city would you like to book a hotel in?"]
        assert result.log_history[0]["job_id"] == "ftjob-1" and result.log_history[0]["trained_tokens"] == 4321
    s = state(folder)
    assert (s["status"], s["job_id"], s["file_id"], s["fine_tuned_model"]) == ("succeeded", "ftjob-1", "file-1",
                                                                                result.model.name)
    assert [h["status"] for h in s["history"]][-3:] == ["queued", "running", "succeeded"]
    assert s["api_key_env"] == "FTGUARD_TEST_OPENAI_KEY"
    with pytest.raises(ModelError, match="FTGUARD_TEST_OPENAI_KEY"):  # the folder may not pick the secret alone
        load_model(ModelConfig(name_or_path=str(folder)))
    served, tok = load_model(ModelConfig(name_or_path=str(folder),  # `ftguard eval --model ... --api-key-env ...`
                                         allowed_key_envs=["FTGUARD_TEST_OPENAI_KEY"]))
    assert tok is None and (served.base_url, served.name) == (api.url, result.model.name)
    no_key_anywhere(tmp_path)


def test_resume_after_restart_never_submits_a_second_job(tmp_path: Path, convs: list,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "models" / "openai_ft"
    script = ["validating_files", "queued"] + ["running"] * 6 + ["succeeded"]
    with FakeOpenAI(key=OPENAI_KEY, script=script) as api:
        stop_after_checks(monkeypatch, 3)
        with pytest.raises(KeyboardInterrupt):
            openai_method(api)(train_job(api, folder, convs))
        assert state(folder)["job_id"] == "ftjob-1" and state(folder)["status"] == "running"
        monkeypatch.setattr(jobs, "_sleep", lambda s: None)
        # the restarted ftguard: a new method object, no --yes needed to resume a job that already exists
        result = openai_method(api, submit=False)(train_job(api, folder, convs))
        assert result.model.name.startswith(f"ft:{BASE}:")
        assert api.count(*POST_JOBS) == 1 and api.count("POST", "/v1/files") == 1
        # and a third run, after success, reuses the finished job without asking the service to train again
        openai_method(api, submit=False)(train_job(api, folder, convs))
        assert api.count(*POST_JOBS) == 1


def test_kill_between_create_and_saving_the_job_id_adopts_the_job(tmp_path: Path, convs: list,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from ftguard.methods.hosted.openai_ft import OpenAIService

    folder = tmp_path / "models" / "openai_ft"
    real_create = OpenAIService.create

    def create_then_die(self, file_id: str) -> str:
        real_create(self, file_id)  # the service has the job ...
        raise KeyboardInterrupt  # ... but ftguard dies before writing its id down

    with FakeOpenAI(key=OPENAI_KEY) as api:
        monkeypatch.setattr(OpenAIService, "create", create_then_die)
        with pytest.raises(KeyboardInterrupt):
            openai_method(api)(train_job(api, folder, convs))
        assert (state(folder)["status"], state(folder)["job_id"]) == ("submitting", None)
        monkeypatch.setattr(OpenAIService, "create", real_create)
        result = openai_method(api)(train_job(api, folder, convs))
        assert api.count(*POST_JOBS) == 1 and api.count("GET", "/v1/fine_tuning/jobs") == 1
        assert state(folder)["job_id"] == "ftjob-1" and result.model.name.startswith("ft:")


def test_failed_job_raises_a_clear_error_and_is_not_resubmitted(tmp_path: Path, convs: list) -> None:
    folder = tmp_path / "models" / "openai_ft"
    with FakeOpenAI(key=OPENAI_KEY, script=["validating_files", "running", "failed"]) as api:
        with pytest.raises(FtguardError, match="openai job ftjob-1 .*failed: invalid_training_file: Training file "
                                               "has too few examples"):
            openai_method(api)(train_job(api, folder, convs))
        assert state(folder)["status"] == "failed"
        with pytest.raises(FtguardError, match="ended as failed.*delete .*job.json"):
            openai_method(api)(train_job(api, folder, convs))
        assert api.count(*POST_JOBS) == 1


def test_cancel_a_running_job(tmp_path: Path, convs: list, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture) -> None:
    from ftguard.methods.hosted.__main__ import main as hosted_main

    folder = tmp_path / "models" / "openai_ft"
    with FakeOpenAI(key=OPENAI_KEY, script=["validating_files"] + ["running"] * 10) as api:
        stop_after_checks(monkeypatch, 2)
        with pytest.raises(KeyboardInterrupt):
            openai_method(api)(train_job(api, folder, convs))
        assert hosted_main(["cancel", str(folder)]) == 0  # python -m ftguard.methods.hosted cancel FOLDER
        assert "openai job ftjob-1: cancelled" in capsys.readouterr().out
        assert api.count("POST", "/v1/fine_tuning/jobs/ftjob-1/cancel") == 1 and not api.bad_auth
        assert state(folder)["status"] == "cancelled"
        with pytest.raises(FtguardError, match="already ended as cancelled"):
            cancel_job(folder, service_for)
        with pytest.raises(FtguardError, match="ended as cancelled"):
            openai_method(api)(train_job(api, folder, convs))
        assert api.count(*POST_JOBS) == 1


def test_paid_job_needs_yes_or_submit_and_prints_its_cost(tmp_path: Path, convs: list) -> None:
    folder = tmp_path / "models" / "openai_ft"
    with FakeOpenAI(key=OPENAI_KEY) as api:
        with pytest.raises(ConfigError, match=r"paid job \(.*training tokens x \$3.00/1M = about \$0\.\d\d\)"
                                              r".*Nothing was submitted.*--yes"):
            openai_method(api, submit=False)(train_job(api, folder, convs))
        assert api.requests == []  # not even the file was uploaded
        openai_method(api, submit=False)(train_job(api, folder, convs, allow_paid=True))  # `ftguard run --yes`
        assert api.count(*POST_JOBS) == 1


def test_changed_settings_never_start_a_second_job_in_the_same_folder(tmp_path: Path, convs: list) -> None:
    folder = tmp_path / "models" / "openai_ft"
    with FakeOpenAI(key=OPENAI_KEY) as api:
        openai_method(api)(train_job(api, folder, convs))
        with pytest.raises(ConfigError, match="records openai job ftjob-1 .* for other settings.*new `tag`"):
            openai_method(api, n_epochs=4)(train_job(api, folder, convs))
        assert api.count(*POST_JOBS) == 1


def test_study_base_must_be_served(tmp_path: Path, convs: list) -> None:
    job = TrainJob(model=object(), tokenizer=object(), train_data=convs, train=TrainConfig(), lr=1e-5, seed=0,
                   max_seq_len=384, output_dir=tmp_path, base_name="tiny:llama")
    with pytest.raises(ConfigError, match="base model must be served too"):
        METHODS.create("openai_ft", submit=True)(job)


def test_bad_parameters_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="at most 64 characters"):
        METHODS.create("openai_ft", suffix="x" * 65)
    with pytest.raises(ConfigError, match="n_epoch"):
        METHODS.create("openai_ft", n_epoch=3)
    with pytest.raises(ConfigError, match="at most 40 characters"):
        METHODS.create("together_ft", suffix="x" * 41)


# Together AI: the official SDK is an optional extra


def test_together_lora_job_end_to_end(tmp_path: Path, convs: list) -> None:
    pytest.importorskip("together", reason="the together SDK is an extra: pip install 'ftguard[hosted]'")
    folder = tmp_path / "models" / "together_ft"
    with FakeTogether(key=TOGETHER_KEY) as api:
        method = together_method(api, lora_r=8, n_epochs=2, learning_rate=2e-4, suffix="hotels")
        result = method(train_job(api, folder, convs, TG_BASE, "FTGUARD_TEST_TOGETHER_KEY"))
        assert api.count(*POST_TG_JOBS) == 1 and not api.bad_auth
        fid = state(folder)["file_id"]
        assert api.uploaded[fid] == (folder / "train.jsonl").read_bytes()  # via the signed URL
        assert api.count("POST", f"/v1/files/{fid}/preprocess") == 1
        body = api.bodies(*POST_TG_JOBS)[0]
        assert (body["model"], body["training_file"], body["n_epochs"], body["learning_rate"]) == (TG_BASE, fid, 2,
                                                                                                   2e-4)
        assert body["training_type"] == {"type": "Lora", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
                                         "lora_trainable_modules": "all-linear"}
        assert body["training_method"] == {"method": "sft", "train_on_inputs": False}  # assistant tokens only
        assert (body["suffix"], body["random_seed"]) == ("hotels", 0)
        assert result.model.name == "tester/Meta-Llama-3.1-8B-Instruct-Reference-hotels-ft-0001"
        assert [h["status"] for h in state(folder)["history"]][-4:] == ["running", "compressing", "uploading",
                                                                         "completed"]
    no_key_anywhere(tmp_path)


def test_together_full_training_resume_failure_and_cancel(tmp_path: Path, convs: list,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("together", reason="the together SDK is an extra: pip install 'ftguard[hosted]'")
    job = lambda folder: train_job(api, folder, convs, TG_BASE, "FTGUARD_TEST_TOGETHER_KEY")  # noqa: E731
    with FakeTogether(key=TOGETHER_KEY, script=["pending", "queued"] + ["running"] * 5 + ["completed"]) as api:
        full = tmp_path / "full"
        stop_after_checks(monkeypatch, 2)
        with pytest.raises(KeyboardInterrupt):
            together_method(api, lora=False)(job(full))
        monkeypatch.setattr(jobs, "_sleep", lambda s: None)
        together_method(api, lora=False, submit=False)(job(full))  # restart: resumes, no second job
        assert api.count(*POST_TG_JOBS) == 1
        assert api.bodies(*POST_TG_JOBS)[0]["training_type"] == {"type": "Full"}
        api.script = ["pending", "running", "error"]
        with pytest.raises(FtguardError, match="together job ft-0002 .*failed: Job failed: CUDA out of memory"):
            together_method(api, suffix="second")(job(tmp_path / "failing"))
        api.script = ["pending"] + ["running"] * 10
        stop_after_checks(monkeypatch, 1)
        with pytest.raises(KeyboardInterrupt):
            together_method(api, suffix="third")(job(tmp_path / "cancelled"))
        assert cancel_job(tmp_path / "cancelled", service_for).status == "cancelled"
        assert api.count("POST", "/v1/fine-tunes/ft-0003/cancel") == 1 and not api.bad_auth


# The whole study: base and tuned model through the same probes, via `ftguard run --yes`


def test_study_with_openai_ft_runs_and_resumes_without_resubmitting(tmp_path: Path) -> None:
    from ftguard.cli import main

    out = tmp_path / "run"
    with FakeOpenAI(key=OPENAI_KEY) as api:
        cfg = {"model": {"endpoint": api.url, "name": BASE, "api_key_env": "FTGUARD_TEST_OPENAI_KEY"},
               "data": {"train": "builtin:sgd_hotels", "max_examples": 12},
               "methods": [{"name": "openai_ft", "base_url": api.url, "api_key_env": "FTGUARD_TEST_OPENAI_KEY",
                            "poll_interval_s": 0, "prices": {BASE: 3.0}}],
               "probes": [{"name": "sgd_next_turn", "n": 3}, {"name": "toxigen_counter", "n": 3},
                          {"name": "dolly_qa", "n": 3}],
               "anchors": {"n": 0, "drift_n": 0}, "report": {"bootstrap_samples": 100}, "output_dir": str(out)}
        path = tmp_path / "hosted.yaml"
        path.write_text(yaml.safe_dump(cfg))
        assert main(["run", str(path)]) == 2  # no --yes: refused before anything is uploaded
        assert api.count("POST", "/v1/files") == 0
        assert main(["run", str(path), "--yes"]) == 0
        rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
        assert {r["model"] for r in rows} == {"base", "openai_ft"} and len(rows) == 2 * 9
        assert all(r["loglik"] is None for r in rows)  # served models give no log-likelihoods
        tuned = {r["response"] for r in rows if r["model"] == "openai_ft"}
        assert tuned == {"Which city would you like to book a hotel in?"}
        manifest = json.loads((out / "manifest.json").read_text())
        assert manifest["methods"]["openai_ft"]["artifact"] == "endpoint"
        assert (out / "report.md").is_file() and (out / "report.html").is_file()
        chats = api.count("POST", "/v1/chat/completions")
        assert main(["run", str(path)]) == 0  # a restart: nothing submitted, nothing generated again
        assert api.count(*POST_JOBS) == 1 and api.count("POST", "/v1/chat/completions") == chats
        assert not api.bad_auth
    no_key_anywhere(out)
