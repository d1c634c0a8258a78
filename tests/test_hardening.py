"""Issue "hardening": no reply, file or config crashes a study, leaks a key, or corrupts a finished run.
Each test names the point of the issue it covers."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from raw_server import RawServer, completion
from test_endpoint_eval import files_text, small_config

from ftguard.cli import main
from ftguard.client import ChatClient, EndpointError, parse_completion
from ftguard.config import load_config
from ftguard.errors import ConfigError, DataError, FtguardError, ModelError
from ftguard.models import load_model
from ftguard.registry import JUDGES, PROBES, load_plugins

load_plugins()
KEY = "sk-test-Hk42-hardening-secret"
BAD_BODIES = {
    "malformed JSON": b'{"choices": [',
    "HTML": b"<html><body>502 Bad Gateway</body></html>",
    "plain text": b"upstream overloaded, try later",
    "choices empty": b'{"choices": []}',
    "choices null": b'{"choices": null}',
    "choice without message": b'{"choices": [{"index": 0, "text": "hi"}]}',
    "non-string content": completion({"text": "hi"}),
    "list content": completion(["a", "b"]),
    "a JSON array": b"[1, 2, 3]",
    "deeply nested": b"[" * 100_000 + b"]" * 100_000,
}


def _judge(url: str, **kw):
    return JUDGES.create("llm", model="grader", base_url=url, retry_backoff_s=0.01, **kw).for_probe(
        PROBES.create("toxigen_counter", n=1))


# 1. A served model or judge that answers badly never aborts the study.
@pytest.mark.parametrize("what", list(BAD_BODIES))
def test_bad_body_is_a_clear_error_naming_server_and_model(what: str) -> None:
    with pytest.raises(EndpointError) as e:
        parse_completion(BAD_BODIES[what].decode(), "model 'm' at http://x/v1")
    assert "model 'm' at http://x/v1 answered 200 but" in str(e.value)


@pytest.mark.parametrize("what", list(BAD_BODIES))
def test_bad_judge_reply_is_an_error_verdict_never_a_pass(what: str) -> None:
    with RawServer(lambda body, h: (200, {}, BAD_BODIES[what])) as srv:
        judge = _judge(srv.url)
        [v] = judge(PROBES.create("toxigen_counter", n=1).items, ["That is a stereotype."])
    assert v.failed and v.label == "error" and "answered 200 but" in v.explanation


def test_lone_surrogate_content_is_saved_as_text(tmp_path: Path) -> None:
    reply = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok \\ud800 done"}}]}'
    with RawServer(lambda body, h: (200, {}, reply)) as srv:
        out = tmp_path / "run"
        assert main(["eval", "--endpoint", srv.url, "--model", "m", "--config", str(small_config(tmp_path, n=2)),
                     "--output-dir", str(out)]) == 0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert rows and all(r["response"] == "ok \ufffd done" for r in rows)


def test_endpoint_subject_with_a_bad_body_stops_clearly_and_resumes(tmp_path: Path, capsys) -> None:
    state = {"n": 0, "recovered": False, "after": 0}

    def answer(body, headers):
        if state["recovered"]:
            state["after"] += 1
            return 200, {}, completion("Which city?")
        state["n"] += 1
        return (200, {}, completion("Which city?")) if state["n"] <= 2 else (200, {}, b"<html>oops</html>")

    cfg = small_config(tmp_path, n=2)
    out = tmp_path / "run"
    with RawServer(answer) as srv:
        rc = main(["eval", "--endpoint", srv.url, "--model", "served-m", "--config", str(cfg), "--output-dir",
                   str(out)])
        err = capsys.readouterr().err
        assert rc == 2 and "Traceback" not in err
        assert "model 'served-m' at" in err and "answered 200 but the body is not JSON" in err and "<html>" in err
        assert "re-run the same command to resume" in err
        time.sleep(0.3)  # requests still in flight when the first run stopped reach the old script
        state["recovered"] = True  # the server recovers: the re-run asks only for what is missing
        assert main(["eval", "--endpoint", srv.url, "--model", "served-m", "--config", str(cfg), "--output-dir",
                     str(out)]) == 0
    assert state["after"] == 6 - 2  # 3 probes x 2 items; the first batch of 2 was kept


# 2. A judge error is never cached, and verdicts are kept per item.
def test_judge_errors_are_retried_on_the_next_run_and_verdicts_kept_per_item(tmp_path: Path) -> None:
    from ftguard.cache import JsonlCache
    from ftguard.config import Component
    from ftguard.evaluation import ProbeRun, _verdicts

    probe = PROBES.create("toxigen_counter", n=6)
    state = {"down": True, "calls": 0}

    def answer(body, headers):
        state["calls"] += 1
        if state["down"]:
            return 503, {}, b'{"error": {"message": "down"}}'
        return 200, {}, completion('{"label": "counters", "reason": "r"}')

    with RawServer(answer) as srv:
        spec = Component(name="llm", model="grader", base_url=srv.url)
        judge = _judge(srv.url, max_retries=0)
        pr = ProbeRun(probe, [(spec, judge)], 16)
        cache = JsonlCache(tmp_path / "verdicts.jsonl")
        first = _verdicts(pr, spec, judge, ["reply"] * 6, cache)
        assert all(v.failed for v in first) and len(cache) == 0  # nothing cached during the outage
        state["down"] = False
        judge = _judge(srv.url, max_retries=0)  # the next run (a judge given up on stays so within one run)
        second = _verdicts(pr, spec, judge, ["reply"] * 6, JsonlCache(tmp_path / "verdicts.jsonl"))
        assert [v.label for v in second] == ["counters"] * 6
        lines = (tmp_path / "verdicts.jsonl").read_text().splitlines()
        assert len(lines) == 6  # one line per verdict, as it came


def test_a_killed_judging_run_keeps_every_verdict_it_got(tmp_path: Path) -> None:
    from ftguard.cache import JsonlCache
    from ftguard.config import Component
    from ftguard.evaluation import ProbeRun, _verdicts
    from ftguard.judges.base import Judge, Verdict

    probe = PROBES.create("toxigen_counter", n=5)

    def stream(items, responses):
        for i in range(3):
            yield i, Verdict(1.0, "counters", "ok")
        raise KeyboardInterrupt  # killed after three verdicts

    judge = Judge("slow", "1", lambda i, r: [], labels={"counters": 1.0}, stream_fn=stream)
    spec = Component(name="slow")
    with pytest.raises(KeyboardInterrupt):
        _verdicts(ProbeRun(probe, [(spec, judge)], 16), spec, judge, ["x"] * 5, JsonlCache(tmp_path / "v.jsonl"))
    assert len(JsonlCache(tmp_path / "v.jsonl")) == 3


# 3. Judge errors must not flatter a model: the worst case sits beside the point estimate.
def test_errors_on_one_model_show_a_worst_case_below_the_point_estimate(tmp_path: Path) -> None:
    from test_report import make_run, synthetic_rows

    from ftguard.report import build_report

    rows = synthetic_rows(models=("base", "full"))
    tox = [r for r in rows if r["model"] == "full" and r["probe"] == "toxigen_counter"]
    for r in tox:  # a grader that refuses to grade the failing replies: excluding them flatters "full"
        if r["score"] == 0.0:
            r["score"] = None
    s = build_report(make_run(tmp_path / "run", rows))
    d = s["deltas"]["full"]["toxigen_counter"]
    assert d["n_errors"] > 0 and d["worst_delta"] < d["delta"]
    assert s["scores"]["full"]["toxigen_counter"]["worst_mean"] < s["scores"]["full"]["toxigen_counter"]["mean"]
    report = (tmp_path / "run" / "report.md").read_text()
    assert "worst case" in report and "err; worst" in report


# 5. Keys: one scrubber, and a model folder cannot pick the secret.
def test_a_server_echoing_the_key_never_gets_it_into_files_or_the_terminal(tmp_path: Path, monkeypatch,
                                                                           capfd) -> None:
    monkeypatch.setenv("FTGUARD_TEST_JUDGE_KEY", KEY)

    def answer(body, headers):  # echoes the Authorization header in an error, and in a reply
        auth = headers.get("Authorization", "")
        if "lazy" in json.dumps(body):
            return 500, {}, json.dumps({"error": {"message": f"bad request with header {auth}"}}).encode()
        return 200, {}, completion(json.dumps({"label": "counters", "reason": f"seen {auth}"}))

    with RawServer(answer) as srv:
        cfg = tmp_path / "c.yaml"
        cfg.write_text(yaml.safe_dump({
            "model": {"name_or_path": "tiny:llama"}, "methods": [],
            "probes": [{"name": "toxigen_counter", "n": 4, "max_new_tokens": 4,
                        "judges": ["counter_speech", {"name": "llm", "model": "g", "base_url": srv.url,
                                                      "api_key_env": "FTGUARD_TEST_JUDGE_KEY", "max_retries": 1,
                                                      "retry_backoff_s": 0.01,
                                                      "cache_dir": str(tmp_path / "llmcache")}]}],
            "anchors": {"n": 0, "drift_n": 0}, "report": {"bootstrap_samples": 100},
            "output_dir": str(tmp_path / "run")}))
        assert main(["eval", "--model", "tiny:llama", "--config", str(cfg)]) == 0
    assert KEY not in files_text(tmp_path)
    out = capfd.readouterr()
    assert KEY not in out.out + out.err


def test_a_crafted_model_folder_cannot_choose_which_secret_goes_where(tmp_path: Path, monkeypatch,
                                                                      capsys) -> None:
    monkeypatch.setenv("MY_DB_PASSWORD", "hunter2-database")
    folder = tmp_path / "models" / "x"
    folder.mkdir(parents=True)
    (folder / "ftguard_model.json").write_text(json.dumps({"base": "b", "artifact": "endpoint", "model": "m",
                                                           "endpoint": "https://evil.example/v1",
                                                           "api_key_env": "MY_DB_PASSWORD"}))
    with pytest.raises(ModelError, match=r"MY_DB_PASSWORD.*evil\.example.*--api-key-env"):
        load_model(load_config(small_config(tmp_path)).model.model_copy(update={"name_or_path": str(folder)}))
    assert main(["eval", "--model", str(folder), "--config", str(small_config(tmp_path)),
                 "--output-dir", str(tmp_path / "o")]) == 2
    assert "MY_DB_PASSWORD" in capsys.readouterr().err


def test_the_endpoint_is_named_before_the_first_request(tmp_path: Path, caplog) -> None:
    with RawServer(lambda body, h: (200, {}, completion("hi"))) as srv:
        caplog.set_level("INFO")
        assert main(["eval", "--endpoint", srv.url, "--model", "m", "--config", str(small_config(tmp_path, n=1)),
                     "--output-dir", str(tmp_path / "o")]) == 0
    assert f"endpoint: model 'm' at {srv.url}" in caplog.text


# 6. Ctrl-C, hangs, Retry-After, 400.
def test_ctrl_c_against_a_hanging_endpoint_stops_within_seconds(tmp_path: Path) -> None:
    with RawServer(lambda body, h: None) as srv:  # accepts, never answers
        cmd = [sys.executable, "-c", "from ftguard.cli import entry; entry()", "eval", "--endpoint", srv.url,
               "--model", "m", "--config", str(small_config(tmp_path)), "--output-dir", str(tmp_path / "o")]
        # SIGINT as a terminal delivers it: a suite started in the background of a non-interactive shell inherits
        # SIGINT ignored, and Python then keeps ignoring it (that, not ftguard, hung this test in such runs)
        proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.time() + 60
        while len(srv.requests) < 2 and time.time() < deadline:  # requests in flight, none will be answered
            time.sleep(0.1)
        assert srv.requests, "no request reached the server"
        t0 = time.time()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        waited = time.time() - t0
    assert proc.returncode == 130 and waited < 5, (proc.returncode, waited, err[-500:])
    assert "interrupted" in err and "Traceback" not in err
    assert "endpoint: model 'm'" in err  # named before the first request, not after a timeout


def test_retry_after_is_honoured() -> None:
    state = {"n": 0}

    def answer(body, headers):
        state["n"] += 1
        return (429, {"Retry-After": "1"}, b'{"error": {"message": "slow down"}}') if state["n"] == 1 else \
            (200, {}, completion("fine"))

    with RawServer(answer) as srv:
        client = ChatClient(srv.url, "m", retry_backoff_s=0.01)
        t0 = time.time()
        assert client.complete([{"role": "user", "content": "hi"}], 8) == "fine"
        assert time.time() - t0 >= 0.95  # the server's 1 s, not the 0.01 s backoff


def test_a_400_is_reported_as_rejected_not_as_failed_retries() -> None:
    with RawServer(lambda body, h: (400, {}, b'{"error": {"message": "context too long"}}')) as srv:
        with pytest.raises(EndpointError, match="rejected the request.*context too long") as e:
            ChatClient(srv.url, "m", retry_backoff_s=0.01).complete([{"role": "user", "content": "hi"}], 8)
        assert "tries" not in str(e.value) and len(srv.requests) == 1


def test_a_dead_server_fails_the_other_prompts_fast() -> None:
    from ftguard.models import EndpointModel

    model = EndpointModel("http://127.0.0.1:9/v1", "m", concurrency=2, max_retries=1, retry_backoff_s=0.01)
    t0 = time.time()
    with pytest.raises(ModelError, match="no answer after 2 tries"):
        model.chat([[{"role": "user", "content": str(i)}] for i in range(20)], 8)
    assert time.time() - t0 < 10


# 7. The run folder.
def _smoke(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "configs/smoke.yaml", f"output_dir={tmp_path / 'run'}", "methods=[{name: lora, rank: 2}]",
            "probes=[{name: dolly_qa, n: 2, max_new_tokens: 4}]", "anchors.drift_n=0", *extra]


def test_two_runs_on_one_folder_cannot_interleave(tmp_path: Path) -> None:
    from ftguard.rundir import claim_run_dir

    with claim_run_dir(tmp_path / "run"):
        with pytest.raises(ConfigError, match=r"in use by another ftguard run \(pid \d+\)"):
            with claim_run_dir(tmp_path / "run"):
                pass
    with claim_run_dir(tmp_path / "run"):  # released at the end of the first run
        pass


def test_a_failed_rerun_keeps_the_finished_runs_config_and_manifest(tmp_path: Path, monkeypatch) -> None:
    assert main(_smoke(tmp_path)) == 0
    run = tmp_path / "run"
    config, manifest = (run / "config.yaml").read_text(), (run / "manifest.json").read_text()
    import ftguard.pipeline as pipeline

    def crash(*a, **k):  # noqa: ANN002, ANN003
        raise FtguardError("the machine caught fire")

    monkeypatch.setattr(pipeline, "train_method", crash)
    assert main(_smoke(tmp_path, "train.steps=3")) == 2  # a changed config: retrains, and fails
    assert (run / "config.yaml").read_text() == config and (run / "manifest.json").read_text() == manifest
    assert main(["report", str(run)]) == 0
    assert "lora" in (run / "report.md").read_text()


@pytest.mark.parametrize("where", ["not-ours", "file"])
def test_output_dir_must_be_a_run_folder_or_empty(tmp_path: Path, capsys, where: str) -> None:
    target = tmp_path / "project"
    if where == "file":
        target.write_text("precious")
    else:
        target.mkdir()
        (target / "precious.txt").write_text("keep me")
    assert main(["run", "configs/smoke.yaml", f"output_dir={target}"]) == 2
    assert "output_dir" in capsys.readouterr().err
    assert (target.read_text() if where == "file" else (target / "precious.txt").read_text()) in ("precious",
                                                                                                 "keep me")


def test_a_tag_cannot_escape_the_run_folder() -> None:
    with pytest.raises(ConfigError, match="tag"):
        load_config("configs/smoke.yaml", ["methods.0.tag=../../escape"])
    with pytest.raises(ConfigError, match="tag"):
        load_config("configs/smoke.yaml", ["methods.0.tag=/tmp/x"])


def test_a_torn_done_json_retrains_instead_of_crashing(tmp_path: Path) -> None:
    assert main(_smoke(tmp_path)) == 0
    done = tmp_path / "run" / "models" / "lora" / "done.json"
    done.write_text(done.read_text()[:25])  # as a kill mid-write would have left it before
    assert main(_smoke(tmp_path)) == 0
    assert json.loads(done.read_text())["key"]


# 8. Every config error at validate time, before a model loads.
@pytest.mark.parametrize("override, needle", [
    ("methods=[{name: lorra}]", "Unknown method 'lorra'"),
    ("methods=[{name: lora, rank: 0}]", "rank"),
    ("methods=[{name: lora, ranq: 4}]", "unknown parameter"),
    ("probes.0.judges=[{name: reference_match, min_recall: 3}]", "min_recall"),
    ("train.scheduler=cosin", "scheduler"),
    ("train.logging_steps=0", "logging_steps"),
    ("seed=-1", "seed"),
    ("probes=[]", "probes"),
    ("data.max_examples=0", "max_examples"),
    ("train.max_grad_norm=-1", "max_grad_norm"),
    ("x=[1,", "not valid YAML"),
    ("x=!!python/object/apply:os.system [echo]", "not valid YAML"),
    ("data.train=tests", "is a directory"),
])
def test_config_errors_are_clear_and_early(override: str, needle: str, capsys) -> None:
    assert main(["validate", "configs/smoke.yaml", override]) != 0
    err = capsys.readouterr()
    assert needle in err.out + err.err and "Traceback" not in err.err


def test_run_checks_the_config_before_loading_any_model(monkeypatch, capsys) -> None:
    import ftguard.models.loading as loading

    monkeypatch.setattr(loading, "load_model", lambda *a, **k: pytest.fail("a model was loaded"))
    assert main(["run", "configs/smoke.yaml", "methods=[{name: full}, {name: lorra}]"]) == 2
    assert "Unknown method 'lorra'" in capsys.readouterr().err


def test_overrides_after_flags_and_judge_shorthand(tmp_path: Path) -> None:
    from ftguard.cli import build_parser

    args, extra = build_parser().parse_known_args(["run", "c.yaml", "--yes", "train.steps=1"])
    assert args.yes and extra == ["train.steps=1"]
    assert main(["validate", "configs/smoke.yaml", "judges=reference_match"]) != 0  # fits not every probe
    cfg = load_config("configs/smoke.yaml", ["judges=counter_speech"])
    assert cfg.judges[0].name == "counter_speech"


def test_a_directory_as_config_or_output_dir_is_refused(tmp_path: Path, capsys) -> None:
    assert main(["validate", str(tmp_path)]) != 0
    assert "is a directory" in capsys.readouterr().err


# 9. Data edge cases.
def _train_file(tmp_path: Path, line: bytes) -> Path:
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]})
    path = tmp_path / "train.jsonl"
    path.write_bytes(good.encode() + b"\n" + line + b"\n")
    return path


@pytest.mark.parametrize("line, needle", [
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"messages": [{"role": "user", "content": "a \\ud800 b"}, {"role": "assistant", "content": "c"}]}',
     "unpaired UTF-16 surrogate"),
    (b'{"messages": [{"role": "user", "content": "' + b"x" * (20 << 20) + b'"}]}', "at most 4 MiB"),
])
def test_hostile_training_lines_name_file_and_line(tmp_path: Path, line: bytes, needle: str) -> None:
    from ftguard.data import load_chat_jsonl

    with pytest.raises(DataError, match=rf"train\.jsonl:2: .*{needle}"):
        load_chat_jsonl(_train_file(tmp_path, line))


def test_windows_that_cannot_fit_are_counted_never_dropped_silently(tiny_lm) -> None:
    from ftguard.data.tokenize import build_examples

    _, tok = tiny_lm
    long = [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "ok"}]
    short = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    stats: dict = {}
    examples = build_examples(tok, [long, short], max_len=64, stats=stats)
    assert len(examples) == 1 and stats["dropped"] == 1 and stats["windows"] == 1


# 10. Judges read the same reply; the docstring example parses.
def test_every_judge_cuts_the_same_fake_next_turn() -> None:
    from ftguard.judges.reference_match import match

    answer = "Paris.\nUser: and the capital of Spain?\nMadrid is the capital of Spain."
    assert match(answer, "Madrid", "What is the capital of Spain?").score == 0.0  # the fake turn is not read
    assert match("Madrid.\nUser: thanks", "Madrid", "What is the capital of Spain?").score == 1.0
    sources = "".join(p.read_text() for p in Path("src/ftguard/judges").glob("*.py") if p.name != "_reply.py")
    assert "NEXT_TURN = re.compile" not in sources  # one pattern, in judges/_reply.py


def test_llm_docstring_examples_parse() -> None:
    import ftguard.judges.llm as llm_mod

    lines = [ln.strip() for ln in (llm_mod.__doc__ or "").splitlines() if ln.strip().startswith(("probes:", "judges:"))]
    assert len(lines) >= 3
    for ln in lines:
        parsed = yaml.safe_load(ln)
        specs = parsed.get("probes", [{}])[0].get("judges") if "probes" in parsed else parsed["judges"]
        assert any(isinstance(j, dict) and j["name"] == "llm" for j in specs), ln


def test_math_nan_is_never_a_pass() -> None:
    from ftguard.judges.base import Verdict

    assert Verdict(math.nan, "error").failed and not Verdict(0.0, "wrong").failed
