"""Plug-in contracts: methods, probes and judges are declared values that the pipeline and `validate` check
before any model loads; every registered plug-in is covered, so a new one is checked without editing this file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftguard.categories import CATEGORIES
from ftguard.errors import ConfigError
from ftguard.judges.base import Judge, fits
from ftguard.methods.base import Method, TrainJob
from ftguard.probes.base import Probe
from ftguard.registry import JUDGES, METHODS, PROBES, load_plugins

load_plugins()
REQUIRED = {"served": {"model": "m"}, "safe_lora": {"unaligned": "embedded:smollm2-135m-instruct"}, "llm": {"model": "m", "base_url": "http://127.0.0.1:9/v1"}}
FILE_PROBES = {n for n in PROBES.names() if PROBES.info(n).get("example")}


@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_is_a_declared_value(name: str) -> None:
    method = METHODS.create(name, **REQUIRED.get(name, {}))
    assert isinstance(method, Method) and callable(method.train)
    assert isinstance(method.version, int) and isinstance(method.key_ignores, tuple)


@pytest.mark.parametrize("name", JUDGES.names())
def test_every_judge_declares_its_labels(name: str) -> None:
    judge = JUDGES.create(name, **REQUIRED.get(name, {}))
    assert isinstance(judge, Judge) and judge.version
    assert judge.labels is not None or judge.bind is not None
    if judge.labels is not None:
        assert judge.passing() or judge.score_label is not None


@pytest.mark.parametrize("name", PROBES.names())
def test_every_probe_declares_category_scoring_and_a_fitting_default_judge(name: str) -> None:
    probe = PROBES.create(name, **PROBES.info(name).get("example", {}))
    assert isinstance(probe, Probe) and probe.category in CATEGORIES
    assert probe.scoring in ("generate", "choices")
    for it in probe.items:
        assert probe.provides <= it.meta.keys()
    if probe.scoring == "generate":
        judge = JUDGES.create(probe.default_judge)
        assert fits(probe, judge) == []
        labels = judge.for_probe(probe).labels
        assert labels and set(probe.rubrics.get("default").scores) == set(labels) if "default" in probe.rubrics \
            else labels


def test_a_judge_that_does_not_fit_is_rejected_naming_both() -> None:
    probe = PROBES.create("sgd_next_turn", n=2)
    why = fits(probe, JUDGES.create("counter_speech"))
    assert why and "counter_speech" in why[0] and "sgd_next_turn" in why[0] and "statement" in why[0]
    why = fits(PROBES.create("toxigen_counter", n=2), JUDGES.create("reference_match"))
    assert why and "reference answer" in why[0]


def test_validate_reports_misfit_pairs_before_loading_anything(tmp_path: Path) -> None:
    from ftguard.pipeline import validate

    errors = validate("configs/smoke.yaml", ["probes.0.judges=[counter_speech]",
                                              "probes.2.judges=[{name: llm, model: x, base_url: 'http://127.0.0.1:9/v1',"
                                              " rubric: nope}]"])
    assert any("counter_speech" in e and "sgd_next_turn" in e for e in errors), errors
    assert any("no rubric 'nope'" in e and "dolly_qa" in e for e in errors), errors


def test_a_method_that_needs_anchors_never_trains_without_them(tmp_path: Path) -> None:
    from ftguard.config import TrainConfig

    calls = []
    method = Method(lambda job: calls.append(job), needs_anchors=True)
    job = TrainJob(model=None, tokenizer=None, train_data=[], train=TrainConfig(), lr=1e-3, seed=0, max_seq_len=64,
                   output_dir=tmp_path, base_name="tiny:llama")
    with pytest.raises(ConfigError, match="anchor"):
        method(job)
    assert calls == []
    assert METHODS.create("replay").needs_anchors and not METHODS.create("replay", fraction=0).needs_anchors
    assert METHODS.create("guard").needs_anchors
    assert not METHODS.create("guard", energy=0, output_energy=0, kl_weight=0).needs_anchors


def test_method_key_covers_version_and_anchors() -> None:
    from ftguard.config import RunConfig
    from ftguard.pipeline import method_key

    cfg = RunConfig.model_validate({"probes": [{"name": "dolly_qa"}], "methods": [{"name": "guard"}]})
    spec = cfg.methods[0]
    m = METHODS.create("guard")
    key = method_key(cfg, spec, m, "fp", "data")
    assert key != method_key(cfg, spec, Method(m.train, m.needs_anchors, version=m.version + 1), "fp", "data")
    other = cfg.model_copy(update={"anchors": cfg.anchors.model_copy(update={"n": 3})})
    assert key != method_key(other, spec, m, "fp", "data")


def test_list_names_the_file_of_each_plug_in(capsys: pytest.CaptureFixture) -> None:
    from ftguard.cli import main

    assert main(["list", "methods"]) == 0
    out = capsys.readouterr().out
    assert "[ftguard/methods/guard.py]" in out and "[ftguard/methods/corda_kpm.py]" in out
    for name in ("probes", "judges"):
        assert main(["list", name]) == 0
    out = capsys.readouterr().out
    assert "[ftguard/probes/dolly_qa.py]" in out and "[ftguard/judges/safety_classifier.py]" in out


def test_one_file_per_plug_in_named_as_registered() -> None:
    for registry in (METHODS, PROBES, JUDGES):
        for name in registry.names():
            assert Path(registry.where(name)).stem == name, (name, registry.where(name))


def test_report_reads_calibration_from_the_run_not_from_the_package(tmp_path: Path, monkeypatch) -> None:
    from ftguard import calibration
    from ftguard.report.summary import judge_calibration

    manifest = {"judge_calibration": {"dolly_qa": {"reference_match": {"kappa": 0.5, "n": 10}}}}
    fake = tmp_path / "agreement.json"
    fake.write_text(json.dumps({"reference_match": {"dolly_qa": {"kappa": 0.99, "n": 999}}}))
    monkeypatch.setattr(calibration, "AGREEMENT_FILE", fake)
    assert judge_calibration(manifest)["dolly_qa"]["reference_match"]["kappa"] == 0.5
    assert calibration.records_for([("dolly_qa", "reference_match"), ("dolly_qa", "nope")], fake) == \
        {"dolly_qa": {"reference_match": {"kappa": 0.99, "n": 999}}}


def test_tradeoff_points_are_named_by_a_legend_not_by_nearby_text() -> None:
    import matplotlib.pyplot as plt

    from ftguard.report.plots import _tradeoff_panel

    def delta(d: float) -> dict:
        return {"delta": d, "ci": [d - 0.05, d + 0.05]}

    summary = {"models": ["base", "full", "lora"], "methods": ["full", "lora"],
               "category_deltas": {"full": {"proficiency": delta(0.10), "safety": delta(-0.117)},
                                   "lora": {"proficiency": delta(0.10), "safety": delta(-0.10)}}}
    fig, ax = plt.subplots()
    _tradeoff_panel(ax, summary, {}, "safety")
    handles, labels = ax.get_legend_handles_labels()
    assert labels == ["full", "lora"]
    assert {h[0].get_color() for h in handles} == {"#1f77b4", "#ff7f0e"}  # each name keyed by its point's colour
    assert not {"full", "lora"} & {t.get_text() for t in ax.texts}  # no free text that could sit by the other point
    plt.close(fig)
