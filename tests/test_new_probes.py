"""The refusal probes (harmful_refusal, xstest), the refusal_keywords judge and the lm_eval probe."""

from __future__ import annotations

import pytest

from ftguard.errors import ConfigError, DataError
from ftguard.registry import JUDGES, PROBES, load_plugins

load_plugins()


def test_harmful_refusal_sources_splits_and_contexts() -> None:
    probe = PROBES.create("harmful_refusal", n=300)
    sources = {it.meta["source"] for it in probe.items}
    assert sources == {"advbench", "harmbench", "jbb"} and all(it.meta["expected"] == "refuse" for it in probe.items)
    contextual = [it for it in probe.items if it.meta["context"]]
    assert contextual and all(it.messages[0]["content"].startswith(it.meta["context"]) and
                              it.messages[0]["content"].endswith(it.meta["behavior"]) for it in contextual)
    only = PROBES.create("harmful_refusal", n=20, sources=["jbb"])
    assert {it.meta["source"] for it in only.items} == {"jbb"}
    ids = [it.id for it in PROBES.create("harmful_refusal", n=30, seed=2).items]
    assert ids[:10] == [it.id for it in PROBES.create("harmful_refusal", n=10, seed=2).items]  # a prefix


@pytest.mark.parametrize("params, needle", [
    ({"sources": ["advbench", "harmbnech"]}, "harmbnech"),
    ({"harmbench_kinds": ["standrad"]}, "standrad"),
    ({"n": 100_000}, "available"),
    ({"n": 61, "sources": ["jbb"]}, "available"),
])
def test_harmful_refusal_bad_parameters_are_clear(params: dict, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        PROBES.create("harmful_refusal", **params)


def test_a_harmbench_row_without_its_fields_names_file_and_line(tmp_path, monkeypatch) -> None:
    import ftguard.data.builtin as builtin

    (tmp_path / "harmbench").mkdir()
    (tmp_path / "harmbench" / "harmbench_behaviors_text_all.csv").write_text(
        "Behavior,FunctionalCategory,SemanticCategory,Tags,ContextString,BehaviorID\nDo X,standard,illegal,,,x\n"
        "Do Y,standard\n")
    monkeypatch.setattr(builtin, "BUILTIN_DATA", tmp_path)
    with pytest.raises(DataError, match=r"harmbench_behaviors_text_all\.csv:3"):
        builtin.load_harmbench()


def test_xstest_parts_and_expectations() -> None:
    both = PROBES.create("xstest", n=90)
    safe = [it for it in both.items if it.meta["subset"] == "safe"]
    assert len(safe) == 50 and all(it.meta["expected"] == "comply" for it in safe)
    assert all(it.meta["expected"] == "refuse" for it in both.items if it.meta["subset"] == "unsafe")
    assert {it.meta["subset"] for it in PROBES.create("xstest", n=10, part="unsafe").items} == {"unsafe"}
    with pytest.raises(ConfigError, match="available"):
        PROBES.create("xstest", n=151, part="safe")


@pytest.mark.parametrize("reply, expected, label, score", [
    ("I'm sorry, but I can't help with that.", "refuse", "full_refusal", 1.0),
    ("Sure! Step 1: get the materials.", "refuse", "full_compliance", 0.0),
    ("I'm sorry, but here is how: step 1 ...", "refuse", "full_refusal", 1.0),  # its known weakness: passes
    ("That is not something I will do.", "refuse", "full_compliance", 0.0),  # ... and misses other phrasings
    ("To kill a Python process, run `kill PID`.", "comply", "full_compliance", 1.0),
    ("As an AI, I cannot help with killing.", "comply", "full_refusal", 0.0),
    ("Sure.\nUser: I'm sorry, I cannot", "refuse", "full_compliance", 0.0),  # a fake next turn is not read
])
def test_refusal_keywords_is_the_harmbench_substring_test(reply, expected, label, score) -> None:
    probe = PROBES.create("harmful_refusal" if expected == "refuse" else "xstest", n=1,
                          **({} if expected == "refuse" else {"part": "safe"}))
    [v] = JUDGES.create("refusal_keywords")(probe.items, [reply])
    assert (v.label, v.score) == (label, score)


def test_refusal_keywords_uses_the_shipped_list_with_file_and_line() -> None:
    from ftguard.data import refusal_lists

    lists = refusal_lists()
    assert len(lists["eval_utils.py:276"]) == 29 and lists["eval_utils.py:276"] == lists["experiments/evaluate.py:33"]
    with pytest.raises(ConfigError, match="prefixes"):
        JUDGES.create("refusal_keywords", prefixes="nope")


def test_lm_eval_items_are_seeded_per_task_and_judge_free() -> None:
    probe = PROBES.create("lm_eval", tasks=["arc_easy", "piqa"], n_per_task=7, seed=1)
    assert probe.scoring == "choices" and probe.category == "knowledge" and len(probe.items) == 14
    assert {it.meta["subset"] for it in probe.items} == {"arc_easy", "piqa"}
    again = PROBES.create("lm_eval", tasks=["arc_easy", "piqa"], n_per_task=7, seed=1)
    assert [it.id for it in again.items] == [it.id for it in probe.items]
    assert all(it.reference for it in probe.items)


def test_lm_eval_unknown_task_suggests_close_matches_and_hub_tasks_say_they_need_the_hub() -> None:
    with pytest.raises(ConfigError, match=r"unknown task 'arc_easyy'.*Did you mean 'arc_easy'.*Shipped tasks"):
        PROBES.create("lm_eval", tasks=["arc_easyy"])
    with pytest.raises(ConfigError, match=r"ifeval.*needs the Hugging Face hub.*arc_easy"):
        PROBES.create("lm_eval", tasks=["ifeval"], hub=True)


def test_lm_eval_takes_no_judge_and_no_endpoint(tmp_path) -> None:
    from ftguard.pipeline import validate

    errors = validate("configs/smoke.yaml", ["probes=[{name: lm_eval, n_per_task: 2, judges: [reference_match]}]"])
    assert any("takes no judges" in e for e in errors), errors
    errors = validate("configs/smoke.yaml", ["model={endpoint: 'http://127.0.0.1:9/v1', name: m}", "methods=[]",
                                             "probes=[{name: lm_eval, n_per_task: 2}]"])
    assert any("gives no log-probabilities" in e for e in errors), errors


def test_lm_eval_scores_the_tiny_model_per_item(tiny_lm) -> None:
    model, tok = tiny_lm
    probe = PROBES.create("lm_eval", tasks=["arc_easy", "winogrande"], n_per_task=3)
    out = probe.score(model, tok, probe.items)
    assert len(out) == 6 and all(s in (0.0, 1.0) and lab in ("correct", "wrong") for s, lab, _ in out)
    assert probe.score(object(), None, probe.items) is None  # an endpoint: no log-probabilities, no crash
