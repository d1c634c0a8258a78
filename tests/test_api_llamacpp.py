"""Marker `api`: ftguard against a real OpenAI-compatible server (llama-cpp-python serving the embedded GGUF).

    make test-api        # installs llama-cpp-python[server] (builds llama.cpp, ~4 min on 2 cores), runs these
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from llamacpp_server import llamacpp_server
from test_endpoint_eval import small_config

from ftguard.cli import main
from ftguard.judge_check import CALIBRATION_DIR
from ftguard.probes.base import ProbeItem
from ftguard.registry import JUDGES, PROBES, load_plugins

pytestmark = pytest.mark.api


@pytest.fixture(scope="module")
def server():
    with llamacpp_server() as (url, name):
        yield url, name


def _rows(axis: str, n: int) -> list[dict]:
    lines = (CALIBRATION_DIR / f"{axis}.jsonl").read_text().splitlines()[:n]
    return [json.loads(x) for x in lines]


def test_llm_judge_end_to_end_every_verdict_is_a_label_or_an_error(server, tmp_path: Path) -> None:
    url, name = server
    load_plugins()
    unbound = JUDGES.create("llm", model=name, base_url=url, cache_dir=str(tmp_path / "verdicts"), concurrency=2)
    parsed = 0
    for axis in ("proficiency", "safety", "knowledge"):
        rows = _rows(axis, 4)
        judge = unbound.for_probe(PROBES.create(rows[0]["probe"], n=1))
        items = [ProbeItem(r["item_id"], r["messages"], r["reference"], r["meta"]) for r in rows]
        verdicts = judge(items, [r["response"] for r in rows])
        assert len(verdicts) == 4
        for v in verdicts:
            assert v.label in judge.labels or v.label == "error", v
            assert math.isnan(v.score) == (v.label == "error")  # an unparsable verdict is never a pass
            assert v.explanation  # the judge's reason, or the raw output it could not parse
        parsed += sum(v.label != "error" for v in verdicts)
        again = judge(items, [r["response"] for r in rows])  # parsed verdicts come back from the cache
        assert [v.label for v in again if v.label != "error"] == [v.label for v in verdicts if v.label != "error"]
    assert len(list((tmp_path / "verdicts").rglob("*.json"))) == parsed  # errors are not cached


def test_judge_check_runs_the_llm_judge_against_the_server(server, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture) -> None:
    url, name = server
    labels = tmp_path / "safety.jsonl"
    labels.write_text("".join(json.dumps(r) + "\n" for r in _rows("safety", 6)))
    assert main(["judge-check", "--judge", "llm", "--set", f"model={name}", "--set", f"base_url={url}",
                 "--labels", str(labels)]) == 0
    out = capsys.readouterr().out
    assert "vs 6 human labels" in out and "Cohen's kappa" in out and "human \\ judge" in out


def test_eval_endpoint_against_the_server(server, tmp_path: Path) -> None:
    url, name = server
    out = tmp_path / "llamacpp"
    assert main(["eval", "--endpoint", url, "--model", name, "--config", str(small_config(tmp_path, n=4)),
                 "--output-dir", str(out), "--tag", "llamacpp"]) == 0
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 12 and all(r["loglik"] is None for r in rows)
    assert sum(bool(r["response"].strip()) for r in rows) >= 10  # a real model answers
    assert (out / "report.md").is_file()
