"""Models served behind an OpenAI-compatible API as study subjects: `ftguard eval --endpoint`, the `served`
method, retries, key handling, (the real llama.cpp server: test_api_llamacpp.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import yaml
from hosted_fakes import FakeOpenAI

from ftguard.cli import main
from ftguard.config import ModelConfig, load_config
from ftguard.errors import ConfigError, ModelError
from ftguard.models import EndpointModel, load_model, model_fingerprint

KEY = "sk-test-Qv55-endpoint-secret"


def small_config(tmp_path: Path, n: int = 3, **extra: object) -> Path:
    cfg = {"methods": [], "probes": [{"name": "sgd_next_turn", "n": n, "max_new_tokens": 24},
                                     {"name": "toxigen_counter", "n": n, "max_new_tokens": 48},
                                     {"name": "dolly_qa", "n": n, "max_new_tokens": 48}],
           "generation": {"batch_size": 2, "max_prompt_tokens": 1024}, "anchors": {"n": 0, "drift_n": 0},
           "report": {"bootstrap_samples": 100}, "output_dir": str(tmp_path / "run"), **extra}
    path = tmp_path / "eval.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def files_text(root: Path) -> str:
    return "\n".join(f.read_text(errors="replace") for f in root.rglob("*") if f.is_file())


def test_eval_endpoint_writes_the_report_without_logliks_or_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    caplog: pytest.LogCaptureFixture,
                                                                    capfd: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("FTGUARD_TEST_ENDPOINT_KEY", KEY)
    for name in (None, "httpx2", "httpx", "openai"):  # even debug logs of the HTTP client must not show the key
        caplog.set_level(logging.DEBUG, logger=name)
    out = tmp_path / "out"
    with FakeOpenAI(key=KEY) as api:
        rc = main(["eval", "--endpoint", api.url, "--model", "my-finetune", "--api-key-env",
                   "FTGUARD_TEST_ENDPOINT_KEY", "--config", str(small_config(tmp_path)), "--output-dir", str(out),
                   "--tag", "mine"])
        assert rc == 0 and not api.bad_auth
        chats = api.bodies("POST", "/v1/chat/completions")
    assert len(chats) == 9 and {c["model"] for c in chats} == {"my-finetune"}
    assert {c["temperature"] for c in chats} == {0} and {c["max_tokens"] for c in chats} == {24, 48}
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 9 and {r["model"] for r in rows} == {"mine"}
    assert all(r["loglik"] is None for r in rows)  # endpoints give no log-likelihoods
    assert {r["response"] for r in rows} == {"Which city would you like to book a hotel in?"}
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    saved = yaml.safe_load((out / "config.yaml").read_text())["model"]
    assert (saved["endpoint"], saved["name_or_path"], saved["api_key_env"]) == (api.url, "my-finetune",
                                                                                "FTGUARD_TEST_ENDPOINT_KEY")
    assert KEY not in files_text(out)
    logs = caplog.text + "".join(capfd.readouterr())
    assert "chat/completions" in logs and "mine/dolly_qa" in logs  # requests and progress were logged ...
    assert KEY not in logs  # ... but never the key


def test_served_method_audits_a_finetune_against_its_base(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTGUARD_TEST_ENDPOINT_KEY", KEY)
    with FakeOpenAI(key=KEY) as api:
        model = {"endpoint": api.url, "name": "base-model", "api_key_env": "FTGUARD_TEST_ENDPOINT_KEY"}
        cfg = small_config(tmp_path, n=4, model=model,
                           methods=[{"name": "served", "tag": "my_finetune", "model": "my-finetune"}])
        assert main(["run", str(cfg)]) == 0
        assert api.count("POST", "/v1/files") == 0  # nothing trained, nothing uploaded
    out = tmp_path / "run"
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert {r["model"] for r in rows} == {"base", "my_finetune"}
    base = {(r["probe"], r["item_id"]): r["response"] for r in rows if r["model"] == "base"}
    tuned = {(r["probe"], r["item_id"]): r["response"] for r in rows if r["model"] == "my_finetune"}
    assert base.keys() == tuned.keys() and set(base.values()) != set(tuned.values())  # paired, different models
    summary = json.loads((out / "summary.json").read_text())
    assert "my_finetune" in json.dumps(summary)
    info = json.loads((out / "models" / "my_finetune" / "ftguard_model.json").read_text())
    assert (info["artifact"], info["model"], info["endpoint"]) == ("endpoint", "my-finetune", api.url)
    assert KEY not in files_text(out)


def test_endpoint_retries_429_and_5xx_with_backoff() -> None:
    with FakeOpenAI(key="sk-local-dummy") as api:  # the key local hosts get when none is set
        api.fail_next_chat = [429, 503]
        model = EndpointModel(api.url, "m", api_key_env="FTGUARD_UNSET_VAR_FOR_TEST", retry_backoff_s=0.01)
        assert model.chat([[{"role": "user", "content": "hi"}]], 8) == [
            "I disagree: that statement is a harmful stereotype. What date would you like to check in?"]
        assert api.count("POST", "/v1/chat/completions") == 3
        api.fail_next_chat = [500] * 3
        model = EndpointModel(api.url, "m", api_key_env="FTGUARD_UNSET_VAR_FOR_TEST", max_retries=2,
                              retry_backoff_s=0.01)
        with pytest.raises(ModelError, match="no answer after 3 tries.*re-run the same command to resume"):
            model.chat([[{"role": "user", "content": "hi"}]], 8)


def test_a_refused_key_is_a_clear_error_that_does_not_show_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = "sk-wrong-Hh20-secret"
    monkeypatch.setenv("FTGUARD_TEST_ENDPOINT_KEY", wrong)
    with FakeOpenAI(key=KEY) as api:
        model = EndpointModel(api.url, "m", api_key_env="FTGUARD_TEST_ENDPOINT_KEY")
        with pytest.raises(ModelError) as err:
            model.chat([[{"role": "user", "content": "hi"}]], 8)
    assert "refused the key from FTGUARD_TEST_ENDPOINT_KEY" in str(err.value)
    assert wrong not in str(err.value) and "***" in str(err.value)  # the fake echoes the key; it is scrubbed


def test_endpoint_config_validation_and_identity(tmp_path: Path) -> None:
    def load(model: dict) -> ModelConfig:
        path = tmp_path / "c.yaml"
        path.write_text(yaml.safe_dump({"model": model, "probes": [{"name": "dolly_qa"}]}))
        return load_config(path).model

    with pytest.raises(ConfigError, match="also give `name`"):
        load({"endpoint": "http://127.0.0.1:8080/v1"})
    with pytest.raises(ConfigError, match="http\\(s\\) URL"):
        load({"endpoint": "127.0.0.1:8080", "name": "m"})
    with pytest.raises(ConfigError, match="not both"):
        load({"endpoint": "http://h/v1", "name": "m", "name_or_path": "m"})
    cfg = load({"endpoint": "http://127.0.0.1:8080/v1", "name": "smollm2"})
    assert cfg.name_or_path == "smollm2" and cfg.api_key_env == "OPENAI_API_KEY"
    same = cfg.model_copy(update={"endpoint": "http://127.0.0.1:8080/v1/"})
    other = cfg.model_copy(update={"name_or_path": "other"})
    assert model_fingerprint(cfg) == model_fingerprint(same) != model_fingerprint(other)
    model, tok = load_model(cfg)  # no connection is made until the first request
    assert isinstance(model, EndpointModel) and tok is None and model.name == "smollm2"
    assert "sk-" not in repr(model)
