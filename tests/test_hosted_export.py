"""Hosted fine-tuning files: export to chat JSONL, OpenAI's format rules with `file:line` errors, token counts,
and the `ftguard run --dry-run` plan (file, tokens, cost; nothing submitted)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from ftguard.data import load_train_data
from ftguard.errors import DataError
from ftguard.methods.hosted.export import (
    OPENAI_RULES,
    TOGETHER_RULES,
    _estimate,
    check_chat_file,
    export_chat_jsonl,
    token_counter,
)

ROOT = Path(__file__).resolve().parents[1]


def ok(i: int = 0) -> dict:
    return {"messages": [{"role": "system", "content": "You book hotels."},
                         {"role": "user", "content": f"A room in Paris, please ({i})."},
                         {"role": "assistant", "content": "For which dates?"}]}


def write(path: Path, lines: list) -> Path:
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    return path


def test_export_round_trip_passes_openai_rules(tmp_path: Path) -> None:
    convs = load_train_data("builtin:sgd_hotels")[:12]
    path = export_chat_jsonl(convs, tmp_path / "models" / "openai_ft" / "train.jsonl")
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x)["messages"] for x in lines] == convs
    report = check_chat_file(path, OPENAI_RULES)
    assert report.n_examples == 12 and len(report.tokens) == 12
    assert all(t > 10 for t in report.tokens) and report.total_tokens == sum(report.tokens)
    assert "tiktoken" in report.token_method or "estimate" in report.token_method


def test_every_rule_violation_is_reported_with_file_and_line(tmp_path: Path) -> None:
    long = {"messages": [{"role": "user", "content": "word " * 400}, {"role": "assistant", "content": "ok"}]}
    bad = [
        ok(1),                                                                          # 1: fine
        {"messages": [{"role": "asistant", "content": "hi"}, {"role": "assistant", "content": "x"}]},  # 2
        {"messages": [{"role": "user", "content": "  "}, {"role": "assistant", "content": "x"}]},      # 3
        {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "x"},
                      {"role": "user", "content": "bye"}]},                             # 4: user last
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]},  # 5: no assistant
        '{"messages": [{"role": "user", "content": "hi"}',                              # 6: broken JSON
        {"messages": [{"role": "user", "content": "hi"},
                      {"role": "assistant", "content": "x", "weight": 2}]},             # 7: bad weight
        {"messages": [{"role": "user", "content": "hi", "emotion": "happy"},
                      {"role": "assistant", "content": "x"}]},                          # 8: unknown key
        long,                                                                           # 9: too long
        "",                                                                             # 10: empty line
        {"prompt": "hi", "completion": "there"},                                        # 11: not chat format
    ]
    path = write(tmp_path / "train.jsonl", bad)
    rules = replace(OPENAI_RULES, max_tokens_per_example=200)
    with pytest.raises(DataError) as err:
        check_chat_file(path, rules)
    msg = str(err.value)
    expected = {2: "role 'asistant'", 3: "empty content", 4: "the last message is from 'user'",
                5: "no assistant message", 6: "invalid JSON", 7: "weight 2", 8: "unknown key(s) ['emotion']",
                9: "over the 200-token limit", 10: "empty line", 11: "unknown key(s) ['prompt', 'completion']"}
    for line, text in expected.items():
        assert any(f"{path}:{line}:" in row and text in row for row in msg.splitlines()), (line, text, msg)
    assert f"{path}:1:" not in msg
    assert msg.startswith(f"{len(msg.splitlines()) - 1} problem(s)")  # all of them at once, not the first only


def test_minimum_example_count_and_file_size(tmp_path: Path) -> None:
    path = write(tmp_path / "few.jsonl", [ok(i) for i in range(3)])
    with pytest.raises(DataError, match=r"3 example\(s\); OpenAI needs at least 10"):
        check_chat_file(path, OPENAI_RULES)
    assert check_chat_file(path, TOGETHER_RULES).n_examples == 3  # Together takes one or more
    with pytest.raises(DataError, match="is over Together AI's limit of 10 bytes per file"):
        check_chat_file(path, replace(TOGETHER_RULES, max_file_bytes=10))


def test_together_rules_refuse_function_role(tmp_path: Path) -> None:
    conv = {"messages": [{"role": "user", "content": "hi"}, {"role": "function", "content": "{}"},
                         {"role": "assistant", "content": "x"}]}
    path = write(tmp_path / "t.jsonl", [conv])
    with pytest.raises(DataError, match=rf"{path.name}:1: messages\[1\] has role 'function'; Together AI accepts"):
        check_chat_file(path, TOGETHER_RULES)
    assert check_chat_file(path, replace(OPENAI_RULES, min_examples=1)).n_examples == 1


def test_token_estimate_is_documented_arithmetic() -> None:
    msgs = [{"role": "user", "content": "abcd" * 10}, {"role": "assistant", "content": "abcde"}]
    assert _estimate(msgs) == 3 + (3 + 10) + (3 + 2)  # per example + per message + ceil(chars / 4)
    count, method = token_counter()
    assert count(msgs) > 0 and method


def test_dry_run_prints_checked_file_tokens_and_cost(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ftguard.cli import main

    out = tmp_path / "run"
    rc = main(["run", str(ROOT / "configs" / "openai_ft.yaml"), f"output_dir={out}", "data.max_examples=40",
               "--dry-run"])
    text = capsys.readouterr().out
    assert rc == 0, text
    train = out / "models" / "openai_ft" / "train.jsonl"
    assert train.is_file() and len(train.read_text().splitlines()) == 40
    report = check_chat_file(train, OPENAI_RULES)
    assert f"training file    {train}" in text
    assert "format check     OK: 40 examples pass OpenAI's rules" in text
    assert f"tokens           {report.total_tokens:,} per epoch" in text
    assert f"training tokens  {3 * report.total_tokens:,} (3 epochs)" in text
    assert f"estimated cost   ${3 * report.total_tokens / 1e6 * 3.0:,.2f}" in text
    assert "needs --yes" in text and "nothing is uploaded or submitted" in text
    assert not (out / "models" / "openai_ft" / "job.json").exists()  # nothing submitted, no job state


def test_dry_run_stops_on_format_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ftguard.cli import main

    data = write(tmp_path / "mine.jsonl", [ok(i) for i in range(4)])
    rc = main(["run", str(ROOT / "configs" / "openai_ft.yaml"), f"output_dir={tmp_path / 'run'}",
               f"data.train={data}", "--dry-run"])
    assert rc == 2
    assert "4 example(s); OpenAI needs at least 10" in capsys.readouterr().err


def test_dry_run_flags_a_study_whose_base_is_not_served(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from ftguard.cli import main

    rc = main(["run", str(ROOT / "configs" / "openai_ft.yaml"), f"output_dir={tmp_path / 'run'}",
               "model={name_or_path: 'tiny:llama'}", "--dry-run"])
    assert rc == 1
    assert "the study's base model must be served too" in capsys.readouterr().out
