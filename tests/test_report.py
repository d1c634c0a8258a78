"""The report rebuilds everything from results.jsonl + manifest.json: numbers, figures, Markdown, HTML."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from ftguard.errors import DataError
from ftguard.report import build_report, format_summary_table
from ftguard.report.compare import cohen_kappa, mcnemar_exact_p, paired_stats
from ftguard.results import write_jsonl

N = 30
XSS = "<script>alert(1)</script> | `tick` ```fence``` **bold**"
PROBES = {"sgd_next_turn": "proficiency", "toxigen_counter": "safety", "dolly_qa": "knowledge"}
JUDGES = {"proficiency": "act_match", "safety": "refusal_regex", "knowledge": "reference_match"}
# Which items pass, per (model, probe). Hand-computed numbers below follow from these sets.
PASSES = {
    ("base", "sgd_next_turn"): range(15),  # 0.5
    ("full", "sgd_next_turn"): range(27),  # 0.9 -> +40 points
    ("lora", "sgd_next_turn"): range(21),  # 0.7 -> +20
    ("base", "toxigen_counter"): range(27),  # 0.9
    ("full", "toxigen_counter"): [*range(18), 27, 28],  # 20/30; pass->fail 18..26, fail->pass 27, 28
    ("lora", "toxigen_counter"): range(24),  # 0.8; pass->fail 24..26
    ("base", "dolly_qa"): range(24),  # 0.8
    ("full", "dolly_qa"): range(12),  # 0.4
    ("lora", "dolly_qa"): range(22),  # item 0 is a judge error, items 28-29 missing
}
LOGLIK = {"base": -1.0, "full": -1.5, "lora": -1.2}


def make_row(model: str, probe: str, i: int, score: float | None, response: str | None = None) -> dict:
    category = PROBES[probe]
    judge = JUDGES[category]
    verdicts = {judge: {"score": score, "label": "", "explanation": f"{judge} saw item {i}"}}
    if category == "safety":  # a second judge that flips every 10th verdict
        other = None if score is None else (1.0 - score if i % 10 == 0 else score)
        verdicts["llm_grader"] = {"score": other, "label": "graded", "explanation": f"GRADE: {other}"}
    return {"model": model, "probe": probe, "category": category, "item_id": f"{probe}/{i}",
            "prompt": [{"role": "system", "content": "sys"}, {"role": "user", "content": f"question {i} for {probe}"}],
            "reference": "ref", "response": response or f"{model} answer {i}", "judge": judge, "score": score,
            "label": "", "explanation": f"{judge} saw item {i}", "verdicts": verdicts,
            "loglik": LOGLIK[model] if category == "knowledge" else None}


def synthetic_rows(models=("base", "full", "lora")) -> list[dict]:
    rows = []
    for model in models:
        for probe in PROBES:
            for i in range(N):
                if (model, probe) == ("lora", "dolly_qa") and i >= 28:
                    continue  # present for base, missing for lora
                score = float(i in PASSES[model, probe])
                if (model, probe) == ("lora", "dolly_qa") and i == 0:
                    score = None
                response = XSS if (model, probe, i) == ("full", "toxigen_counter", 18) else None
                rows.append(make_row(model, probe, i, score, response))
    return rows


MANIFEST = {
    "config": {"model": {"name_or_path": "tiny:llama"}, "report": {"bootstrap_samples": 500, "max_flips": 3}},
    "methods": {
        "full": {"name": "full", "params": {}, "lr": 2e-5, "train_seconds": 95.2, "seconds_per_step": 2.38,
                 "trainable_params": 134_515_008, "total_params": 134_515_008},
        "lora": {"name": "lora", "params": {"rank": 16, "alpha": 32}, "lr": 2e-4, "train_seconds": 61.0,
                 "seconds_per_step": 1.52, "trainable_params": 4_884_480, "total_params": 139_399_488},
    },
    "timings": {"train": 156.2, "generate": 300.5},
    "versions": {"ftguard": "0.1.0", "numpy": np.__version__},
    "curves": {"wise-ft (full)": [{"label": f"alpha={a}", "proficiency": 0.4 * a, "safety": -0.23 * a,
                                   "knowledge": -0.4 * a} for a in (0.0, 0.5, 1.0)]},
}


def make_run(path: Path, rows: list[dict], manifest: dict | None = MANIFEST) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    write_jsonl(path / "results.jsonl", rows)
    if manifest is not None:
        (path / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[Path, dict]:
    run_dir = make_run(tmp_path_factory.mktemp("run"), synthetic_rows())
    return run_dir, build_report(run_dir)


def test_scores_and_deltas_match_hand_computed(run):
    _, s = run
    assert s["models"] == ["base", "full", "lora"] and s["methods"] == ["full", "lora"]
    assert s["scores"]["base"]["sgd_next_turn"]["mean"] == pytest.approx(0.5)
    assert s["scores"]["full"]["toxigen_counter"]["mean"] == pytest.approx(20 / 30)
    assert s["deltas"]["full"]["sgd_next_turn"]["delta"] == pytest.approx(0.4)
    assert s["deltas"]["lora"]["sgd_next_turn"]["delta"] == pytest.approx(0.2)
    assert s["deltas"]["full"]["toxigen_counter"]["delta"] == pytest.approx(20 / 30 - 0.9)
    lora_k = s["scores"]["lora"]["dolly_qa"]
    assert (lora_k["n"], lora_k["n_errors"], lora_k["mean"]) == (27, 1, pytest.approx(21 / 27))
    paired = s["deltas"]["lora"]["dolly_qa"]  # items 1..27: base passes 1..23, lora 1..21
    assert (paired["n_paired"], paired["n_missing"]) == (27, 2)
    assert paired["delta"] == pytest.approx((21 - 23) / 27)
    assert s["loglik"]["deltas"]["full"]["dolly_qa"]["delta"] == pytest.approx(-0.5)
    assert s["loglik"]["deltas"]["lora"]["dolly_qa"]["n_paired"] == 28
    assert s["category_deltas"]["full"]["safety"]["delta"] == pytest.approx(20 / 30 - 0.9)
    assert json.loads((run[0] / "summary.json").read_text()) == json.loads(json.dumps(s))


def test_ci_contains_delta_and_narrows_with_n():
    def ci_width(repeat: int) -> float:
        base = {f"i{k}": {"score": float(k % 2)} for k in range(30 * repeat)}
        tuned = {f"i{k}": {"score": float(k % 3 != 0)} for k in range(30 * repeat)}
        stats, _ = paired_stats(base, tuned, np.random.default_rng(0), 2000)
        lo, hi = stats["ci"]
        assert lo < stats["delta"] < hi
        return hi - lo

    assert ci_width(10) < ci_width(1) / 2


def test_ci_of_every_score_contains_its_mean(run):
    for per_probe in run[1]["scores"].values():
        for stats in per_probe.values():
            assert stats["ci"][0] <= stats["mean"] <= stats["ci"][1]


def test_mcnemar_exact():
    assert mcnemar_exact_p(10, 2) == pytest.approx(0.03857421875)
    assert mcnemar_exact_p(2, 10) == mcnemar_exact_p(10, 2)
    assert mcnemar_exact_p(0, 0) == 1.0 and mcnemar_exact_p(5, 5) == 1.0
    assert 0 < mcnemar_exact_p(1500, 1000) < 1e-20  # big n stays exact instead of overflowing


def test_flips_counted_and_listed(run):
    run_dir, s = run
    full = s["deltas"]["full"]["toxigen_counter"]
    assert full["pass_to_fail_ids"] == [f"toxigen_counter/{i}" for i in range(18, 27)]
    assert full["fail_to_pass_ids"] == ["toxigen_counter/27", "toxigen_counter/28"]
    assert full["mcnemar_p"] == pytest.approx(mcnemar_exact_p(9, 2))
    md = (run_dir / "report.md").read_text()
    full_section = md[md.index("### full vs base"):md.index("### lora vs base")]
    regressions = full_section.index("toxigen_counter (safety): safe → unsafe (3 of 9 shown)")
    improvements = full_section.index("sgd_next_turn (proficiency): wrong → correct (3 of 12 shown)")
    assert regressions < full_section.index("Item toxigen_counter/18") < improvements  # regressions first
    assert full_section.index("toxigen_counter (safety): unsafe → safe (2)") > improvements
    assert "Item toxigen_counter/21" not in md  # beyond max_flips=3


def test_judge_agreement(run):
    (entry,) = run[1]["judge_agreement"]["toxigen_counter"]
    assert entry["judges"] == ["refusal_regex", "llm_grader"] and entry["n"] == 90
    assert entry["agreement"] == pytest.approx(0.9)
    a = np.array([float(i in PASSES[m, "toxigen_counter"]) for m in ("base", "full", "lora") for i in range(N)])
    b = np.where(np.arange(90) % 10 == 0, 1 - a, a)
    po, pa, pb = 0.9, a.mean(), b.mean()
    pe = pa * pb + (1 - pa) * (1 - pb)
    assert entry["kappa"] == pytest.approx((po - pe) / (1 - pe))
    assert cohen_kappa(np.array([True, True]), np.array([True, True])) is None
    assert "llm_grader vs" not in (run[0] / "report.md").read_text()  # pairs read "refusal_regex vs llm_grader"
    assert "refusal_regex vs llm_grader" in (run[0] / "report.md").read_text()


def test_figures_are_pngs(run):
    run_dir, _ = run
    for name in ("proficiency", "safety", "knowledge", "tradeoff"):
        data = (run_dir / "figures" / f"{name}.png").read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    md = (run_dir / "report.md").read_text()
    assert "](figures/tradeoff.png)" in md and "](figures/safety.png)" in md


def test_html_self_contained_and_escaped(run):
    run_dir, _ = run
    page = (run_dir / "report.html").read_text()
    assert 'src="http' not in page and "<script" not in page and "<link" not in page
    assert page.count('src="data:image/png;base64,') == 4
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md = (run_dir / "report.md").read_text()
    assert f"````text\n{XSS}\n````" in md  # verbatim inside a fence longer than its backtick runs
    outside_fences = re.sub(r"(`{3,})text\n.*?\n\1", "", md, flags=re.S)
    assert "<script" not in outside_fences and "alert(1)" not in outside_fences


def test_markdown_run_info_and_tables(run):
    md = (run[0] / "report.md").read_text()
    assert "tiny:llama" in md and "rank=16, alpha=32" in md and "1m 35s" in md
    assert "+40.0 [+" in md and "## Knowledge log-likelihood" in md and "-0.500 [" in md
    table = format_summary_table(run[1])
    assert "sgd_next_turn" in table and "+40.0" in table and "\x1b[" not in table


def test_fenced_response_cannot_escape():
    from ftguard.report.markdown import md_block, md_escape

    block = md_block("a ``` b ```` c")
    assert block.startswith("`````text\n") and block.endswith("\n`````")
    assert md_escape("a|b <i> `x` _y_ snake_case") == "a\\|b &lt;i&gt; \\`x\\` \\_y\\_ snake_case"
    assert md_escape("[click](http://x) ![i](y) [ok]\nnext") == "[click\\](http://x) ![i\\](y) [ok] next"


def test_base_only_run(tmp_path):
    run_dir = make_run(tmp_path / "eval", synthetic_rows(models=("base",)), manifest=None)
    s = build_report(run_dir)
    assert s["methods"] == [] and s["deltas"] == {}
    assert s["scores"]["base"]["dolly_qa"]["mean"] == pytest.approx(0.8)
    assert not (run_dir / "figures" / "tradeoff.png").exists()
    assert (run_dir / "figures" / "safety.png").exists()
    assert "Flipped examples" not in (run_dir / "report.md").read_text()
    assert "Δ vs base" in format_summary_table(s) and "80.0" in format_summary_table(s)


def test_all_error_rows_and_missing_category(tmp_path):
    rows = [r for r in synthetic_rows(models=("base", "full")) if r["category"] != "knowledge"]
    for r in rows:
        if r["model"] == "full" and r["probe"] == "toxigen_counter":
            r["score"] = None
            r["verdicts"] = {k: {**v, "score": None} for k, v in r["verdicts"].items()}
    s = build_report(make_run(tmp_path / "err", rows))
    assert s["scores"]["full"]["toxigen_counter"] == {"mean": None, "n": 0, "n_errors": 30, "ci": None,
                                                      "worst_mean": 0.0}  # errors counted as failures
    d = s["deltas"]["full"]["toxigen_counter"]
    assert d["delta"] is None and d["n_errors"] == 30
    assert d["worst_delta"] == -s["scores"]["base"]["toxigen_counter"]["mean"]  # every lost verdict a failure
    assert "knowledge" not in s["categories"] and s["loglik"] == {}
    assert (tmp_path / "err" / "figures" / "tradeoff.png").exists()
    assert not (tmp_path / "err" / "figures" / "knowledge.png").exists()


def test_missing_results_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="results.jsonl not found"):
        build_report(tmp_path)
    (tmp_path / "results.jsonl").write_text('{"model": "base"}\n')
    with pytest.raises(DataError, match=r"results.jsonl:1: missing keys"):
        build_report(tmp_path)


def test_report_does_not_import_torch():
    code = ("import sys, ftguard.report, ftguard.report.plots; "
            "bad = {'torch', 'transformers'} & set(sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
