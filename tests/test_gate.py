"""The gate (`ftguard gate`, `gate:` in a config) and the probes on the user's own data (prompts, qa, chat_holdout,
data.holdout_fraction): a study on own files next to the built-in probes, pass/fail with exit codes and JUnit, the
held-out split's disjointness, and bad input failing with clear errors before anything is written."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ftguard.cli import main
from ftguard.config import RunConfig, load_config
from ftguard.errors import ConfigError, DataError
from ftguard.gate import evaluate, junit_xml, parse_thresholds

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "smoke.yaml"
OWN = ROOT / "examples" / "own_data"
OWN_PROBES = [
    f"probes=[{{name: sgd_next_turn, n: 4, max_new_tokens: 8}}, {{name: dolly_qa, n: 4, max_new_tokens: 8}}, "
    f"{{name: prompts, path: '{OWN / 'prompts.csv'}', max_new_tokens: 8}}, "
    f"{{name: qa, path: '{OWN / 'faq.jsonl'}', max_new_tokens: 8}}, {{name: chat_holdout, max_new_tokens: 8}}]",
    "data.holdout_fraction=0.2",
]


def _summary(delta: float, ci: tuple[float, float], n_errors: int = 0, worst: tuple[float, float] | None = None):
    stats = {"delta": delta, "ci": list(ci), "n_errors": n_errors,
             "worst_delta": worst and worst[0] - 0.01, "worst_ci": list(worst) if worst else None}
    return {"methods": ["lora"], "categories": {"safety": ["xstest"]}, "probes": {"xstest": {}},
            "deltas": {"lora": {"xstest": stats}}, "category_deltas": {"lora": {"safety": stats}}}


def test_gate_decides_on_the_lower_ci_end_and_the_worst_case() -> None:
    ok = evaluate(_summary(-0.01, (-0.015, 0.0)), {"safety": 2}, {})
    assert ok["passed"] and ok["checks"][0]["lower"] == pytest.approx(-1.5)
    # the point estimate is a 1-point drop, but the CI does not rule out 5 points: not shown, so it fails
    wide = evaluate(_summary(-0.01, (-0.05, 0.03)), {"safety": 2}, {})
    assert not wide["passed"] and "FAIL" in wide["checks"][0]["message"]
    # judge errors: the worst case decides, not the flattering point estimate
    erred = evaluate(_summary(0.0, (-0.01, 0.01), n_errors=3, worst=(-0.08, -0.02)), {"xstest": 2}, {})
    assert not erred["passed"] and erred["checks"][0]["basis"].startswith("worst case")
    gain = evaluate(_summary(0.10, (0.04, 0.16)), {}, {"safety": 5})
    assert not gain["passed"]  # a gain of 10 points whose CI reaches down to 4 does not show 5
    assert evaluate(_summary(0.10, (0.06, 0.16)), {}, {"safety": 5})["passed"]


def test_gate_junit_has_one_case_per_method_and_check() -> None:
    verdict = evaluate(_summary(-0.01, (-0.05, 0.0)), {"safety": 2, "xstest": 10}, {})
    root = ET.fromstring(junit_xml(verdict))
    cases = root.findall(".//testcase")
    assert [c.get("name") for c in cases] == ["max_drop safety", "max_drop xstest"]
    assert root.get("failures") == "1" and cases[0].find("failure") is not None and cases[1].find("failure") is None


@pytest.mark.parametrize(("pairs", "match"), [(["safety"], "KEY=POINTS"), (["safety=two"], "KEY=POINTS"),
                                              (["=2"], "KEY=POINTS")])
def test_bad_threshold_syntax_is_a_clear_error(pairs: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        parse_thresholds(pairs, "max-drop")


def test_bad_gate_configs_are_rejected() -> None:
    base = load_config(SMOKE).model_dump()
    for gate, match in [({"max_drop": {"safety": -2}}, "cannot be negative"), ({}, "no checks"),
                        ({"max_drop": {"safety": 2}, "methods": ["nope"]}, "not methods of this run"),
                        ({"max_drop": {"safety": 2}, "extra": 1}, "extra")]:
        with pytest.raises(ValueError, match=match):
            RunConfig.model_validate({**base, "gate": gate})
    from ftguard.pipeline import validate_config

    cfg = RunConfig.model_validate({**base, "gate": {"max_drop": {"harmful_refusal": 2}}})
    errors = validate_config(cfg)
    assert any("gate" in e and "harmful_refusal" in e for e in errors), errors


@pytest.fixture(scope="module")
def own_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("own") / "run"
    rc = main(["run", str(SMOKE), f"output_dir={out}", *OWN_PROBES, "gate={max_drop: {safety: 100}}"])
    assert rc == 0  # a drop larger than 100 points cannot happen: the run's own gate passes
    return out


def test_own_data_probes_run_next_to_the_builtin_ones(own_run: Path) -> None:
    rows = [json.loads(line) for line in (own_run / "results.jsonl").read_text().splitlines()]
    probes = {r["probe"] for r in rows}
    assert probes == {"sgd_next_turn", "dolly_qa", "prompts", "qa", "chat_holdout"}
    by = {p: {r["item_id"] for r in rows if r["probe"] == p and r["model"] == "base"} for p in probes}
    assert len(by["prompts"]) == 12 and len(by["qa"]) == 6 and by["chat_holdout"]
    assert {r["model"] for r in rows} == {"base", "full", "lora", "guard"}
    summary = json.loads((own_run / "summary.json").read_text())
    assert summary["gate"]["passed"] and {c["method"] for c in summary["gate"]["checks"]} == {"full", "lora", "guard"}
    assert (own_run / "gate.junit.xml").is_file() and "## Gate" in (own_run / "report.md").read_text()
    assert {s for s in summary["subsets"]["prompts"]} == {"refuse", "comply"}


def test_held_out_conversations_are_never_trained_on(own_run: Path) -> None:
    from ftguard.cache import digest
    from ftguard.data.chat import (
        holdout_split,
        load_holdout_conversations,
        load_train_data,
    )

    cfg = load_config(own_run / "config.yaml")
    convs = load_train_data(cfg.data.train, cfg.data.system_prompt)
    train, held = holdout_split(convs, 0.2)
    assert held and len(train) + len(held) == len(convs)
    key = lambda c: json.dumps(c, sort_keys=True)  # noqa: E731
    assert not {key(c) for c in train} & {key(c) for c in held}
    # the split is a property of the data: another order, or a repeated conversation, lands on the same side
    train2, held2 = holdout_split(list(reversed(convs)) + convs[:5], 0.2)
    assert {key(c) for c in held2} == {key(c) for c in held}
    assert not {key(c) for c in train2} & {key(c) for c in held2}
    record = json.loads((own_run / "holdout.json").read_text())
    assert record["held_out_digests"] == [digest("conv", c) for c in load_holdout_conversations(cfg)]
    rows = [json.loads(line) for line in (own_run / "results.jsonl").read_text().splitlines()]
    assert not {digest("conv", c) for c in train} & set(record["held_out_digests"])
    # every chat_holdout item is the start of a held-out conversation, and of no trained one
    prompts = [r["prompt"] for r in rows if r["probe"] == "chat_holdout"]
    held_starts = {key(c[:i]) for c in held for i in range(1, len(c))}
    train_starts = {key(c[:i]) for c in train for i in range(2, len(c))}
    assert prompts and all(key(p) in held_starts and key(p) not in train_starts for p in prompts)


def test_gate_command_passes_fails_and_writes_junit(own_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    junit = tmp_path / "gate.xml"
    assert main(["gate", str(own_run), "--max-drop", "safety=100", "knowledge=100", "--junit", str(junit)]) == 0
    root = ET.fromstring(junit.read_text())
    assert root.get("tests") == "6" and root.get("failures") == "0"
    assert main(["gate", str(own_run), "--min-gain", "proficiency=100", "--methods", "lora"]) == 1
    out = capsys.readouterr().out
    assert "gate: FAIL" in out and "lora proficiency" in out
    verdict = json.loads((own_run / "gate.json").read_text())
    assert not verdict["passed"] and verdict["methods"] == ["lora"]
    assert main(["gate", str(own_run)]) == 0  # no thresholds given: the run's own `gate:` config


@pytest.mark.parametrize(("args", "match"), [
    (["--max-drop", "harmful_refusal=2"], "neither a category nor a probe"),
    (["--max-drop", "safety=-2"], "cannot be negative"),
    (["--max-drop", "safety"], "KEY=POINTS"),
    (["--min-gain", "proficiency=5", "--methods", "nope"], "not methods of this run"),
])
def test_gate_command_bad_input_exits_2_and_writes_nothing(own_run: Path, args: list[str], match: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    before = (own_run / "gate.json").read_bytes()
    assert main(["gate", str(own_run), *args]) == 2
    err = capsys.readouterr().err
    assert match in err and "Traceback" not in err
    assert (own_run / "gate.json").read_bytes() == before


def test_gate_on_a_folder_without_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gate", str(tmp_path), "--max-drop", "safety=2"]) == 2
    assert "summary.json not found" in capsys.readouterr().err
    assert main(["gate", str(tmp_path)]) == 2
    assert "no `gate:` section" in capsys.readouterr().err


def test_a_failing_config_gate_fails_the_run(own_run: Path, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(own_run, run)  # cached: nothing trains or generates again
    assert main(["run", str(SMOKE), f"output_dir={run}", *OWN_PROBES, "gate={min_gain: {proficiency: 100}}"]) == 1
    assert not json.loads((run / "gate.json").read_text())["passed"]


@pytest.mark.parametrize(("name", "text", "match"), [
    ("p.csv", "id,prompt\n1,hello\n", r"p.csv:2: missing or empty field\(s\) \['expected'\]"),
    ("p.csv", "", "no rows"),
    ("p.csv", "prompt,expected\nhi,maybe\n", "p.csv:2: expected 'maybe' is not one of"),
    ("p.csv", "prompt,expected\nhi,refuse,extra\n", "more fields than the header"),
    ("p.jsonl", '{"prompt": "hi", "expected": "refuse"}\n{"prompt": "x"\n', "p.jsonl:2"),
    ("p.jsonl", '["prompt"]\n', "expected a JSON object"),
])
def test_bad_prompt_files_name_file_and_line(tmp_path: Path, name: str, text: str, match: str) -> None:
    from ftguard.registry import PROBES

    path = tmp_path / name
    path.write_text(text)
    with pytest.raises((DataError, ConfigError), match=match):
        PROBES.create("prompts", path=str(path))


def test_bad_qa_and_chat_files(tmp_path: Path) -> None:
    from ftguard.registry import PROBES

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "q", "answer": "a"}\n{"question": "q2", "reply": "a"}\n')
    with pytest.raises(DataError, match=r"qa.jsonl:2: missing or empty field\(s\) \['answer'\]"):
        PROBES.create("qa", path=str(qa))
    chat = tmp_path / "chat.jsonl"
    chat.write_text('{"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}\n'
                    '{"messages": [{"role": "user", "text": "hi"}]}\n')
    with pytest.raises(DataError, match="chat.jsonl:2"):
        PROBES.create("chat_holdout", path=str(chat))
    with pytest.raises(ConfigError, match="holdout_fraction"):
        PROBES.create("chat_holdout")
    with pytest.raises(DataError, match="file not found"):
        PROBES.create("qa", path=str(tmp_path / "missing.jsonl"))


def test_a_bad_probe_file_stops_the_run_before_anything_is_written(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("prompt,expected\nhi,sometimes\n")
    out = tmp_path / "run"
    assert main(["run", str(SMOKE), f"output_dir={out}", f"probes=[{{name: prompts, path: '{bad}'}}]"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv:2" in err and "Traceback" not in err
    assert not out.exists()


COOKBOOK = ROOT / "tests" / "data" / "openai_cookbook" / "toy_chat_fine_tuning.jsonl"  # MIT, see its README


def test_a_public_chat_fine_tuning_file_is_checked_and_held_out(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    """OpenAI Cookbook's toy chat file: its line 4 has no user message; without it, it trains and is held out."""
    from ftguard.data.chat import holdout_split, load_chat_jsonl

    with pytest.raises(DataError, match=r"toy_chat_fine_tuning.jsonl:4: messages\[1\] is from 'assistant'"):
        load_chat_jsonl(COOKBOOK)
    out = tmp_path / "run"
    assert main(["run", str(SMOKE), f"output_dir={out}", f"data.train={COOKBOOK}"]) == 2
    assert "toy_chat_fine_tuning.jsonl:4" in capsys.readouterr().err and not out.exists()

    fixed = tmp_path / "toy_fixed.jsonl"
    fixed.write_text("".join(line for i, line in enumerate(COOKBOOK.open(), 1) if i != 4))
    convs = load_chat_jsonl(fixed)
    assert [len(c) for c in convs] == [3, 9, 2, 3] and len(convs[3][-1]["content"]) == 26000
    train, held = holdout_split(convs, 0.3)  # its hash puts 2 of the 4 under 0.3
    assert len(train) == len(held) == 2
    assert main(["run", str(SMOKE), f"output_dir={out}", f"data.train={fixed}", "data.holdout_fraction=0.3",
                 "methods=[{name: lora, rank: 4, alpha: 8}]",
                 "probes=[{name: chat_holdout, turn: all, max_new_tokens: 8}]"]) == 0
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    refs = {r["reference"] for r in rows if r["model"] == "base"}
    held_refs = {m["content"] for c in held for m in c if m["role"] == "assistant"}
    assert refs == held_refs  # every held-out assistant turn is scored, and nothing from the trained part
    assert json.loads((out / "holdout.json").read_text())["held_out"] == len(held)
