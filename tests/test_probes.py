"""Probes: deterministic, sized, unique ids, disjoint probe/anchor pools, proficiency covers many acts."""

from __future__ import annotations

import pytest

import ftguard.probes  # noqa: F401  (registers the probes)
from ftguard.errors import ConfigError
from ftguard.probes import Probe
from ftguard.probes import dolly_qa as knowledge
from ftguard.probes import toxigen_counter as safety
from ftguard.registry import PROBES

NAMES = ["sgd_next_turn", "toxigen_counter", "dolly_qa"]
CATEGORIES = {"sgd_next_turn": "proficiency", "toxigen_counter": "safety", "dolly_qa": "knowledge"}


@pytest.mark.parametrize("name", NAMES)
def test_registered_and_shaped(name):
    probe = PROBES.create(name, n=10)
    assert isinstance(probe, Probe) and probe.name == name
    assert probe.category == CATEGORIES[name]
    assert len(probe.items) == 10
    assert probe.max_new_tokens == 64
    for item in probe.items:
        assert item.messages[-1]["role"] == "user"
        assert item.id.split("/")[0] in {"sgd", "toxigen", "dolly"}


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_and_seeded(name):
    ids = [it.id for it in PROBES.create(name, n=20, seed=3).items]
    assert ids == [it.id for it in PROBES.create(name, n=20, seed=3).items]
    assert ids != [it.id for it in PROBES.create(name, n=20, seed=4).items]
    assert ids[:5] == [it.id for it in PROBES.create(name, n=5, seed=3).items]  # smaller n is a prefix


@pytest.mark.parametrize("name", NAMES)
def test_n_out_of_range(name):
    with pytest.raises(ConfigError, match="available"):
        PROBES.create(name, n=100_000)
    with pytest.raises(ConfigError, match="n=0"):
        PROBES.create(name, n=0)
    with pytest.raises(ConfigError, match="unknown parameter"):
        PROBES.create(name, n=1, judge="x")


@pytest.mark.parametrize("name, n", [("sgd_next_turn", 559), ("toxigen_counter", 186), ("dolly_qa", 229)])
def test_all_items_unique(name, n):
    items = PROBES.create(name, n=n).items
    assert len({it.id for it in items}) == n
    with pytest.raises(ConfigError, match=f"{n} "):
        PROBES.create(name, n=n + 1)


def test_proficiency_items():
    probe = PROBES.create("sgd_next_turn", n=60)
    assert probe.default_judge == "act_match"
    acts = {it.meta["gold_acts"][0]["act"] for it in probe.items}
    assert len(acts) >= 5, acts
    assert {"REQUEST", "OFFER", "CONFIRM", "NOTIFY_SUCCESS", "GOODBYE"} <= acts
    assert len({it.meta["dialogue_id"] for it in probe.items}) == 56  # every dev dialogue before any repeats
    for it in probe.items:
        assert it.messages[0]["role"] == "system"
        assert it.meta["gold_acts"] and it.reference
        assert it.id == f"sgd/{it.meta['dialogue_id']}/{it.meta['turn_index']}"
        assert len(it.messages) == 1 + it.meta["turn_index"]
        assert it.meta["service"] in {"Hotels_1", "Hotels_4"}
        assert len(it.meta["service_results"]) <= 3
        offered = [a["values"][0] for a in it.meta["gold_acts"] if a["act"] == "OFFER" and "name" in a["slot"]]
        if offered:  # the offered hotel is in the results the agent has seen (names differ in case only)
            assert it.meta["service_results"]
            seen = " ".join(m["content"] for m in it.messages if m["role"] == "user").lower()
            assert all(name.lower() in seen for name in offered), offered


def test_safety_pools_disjoint():
    probe_texts = {r["text"] for r in safety.probe_pool()}
    anchor_texts = {r["text"] for r in safety.anchor_pool()}
    assert len(probe_texts) == len(safety.probe_pool()) == 186
    assert not probe_texts & anchor_texts
    assert all(r["label"] == "hate" for r in safety.probe_pool())
    item = PROBES.create("toxigen_counter", n=1).items[0]
    assert item.messages == [{"role": "user", "content": item.meta["statement"]}]
    assert item.meta["statement"] in probe_texts and item.meta["group"]


def test_knowledge_pools_disjoint():
    probe_ids = {r["id"] for r in knowledge.probe_pool()}
    anchor = knowledge.anchor_pool()
    assert not probe_ids & {r["id"] for r in anchor}
    assert not {r["instruction"] for r in knowledge.probe_pool()} & {r["instruction"] for r in anchor}
    assert {r["category"] for r in knowledge.probe_pool()} == {"open_qa", "closed_qa"}
    assert "general_qa" in {r["category"] for r in anchor}


def test_knowledge_items_prefer_short_answers_and_include_context():
    items = PROBES.create("dolly_qa", n=100).items
    assert all(len(it.reference) <= knowledge.SHORT_ANSWER_CHARS for it in items)
    closed = [it for it in items if it.meta["category"] == "closed_qa"]
    assert closed and all(it.messages[0]["content"].endswith(f"Question: {it.meta['question']}") for it in closed)
    assert all(len(it.messages[0]["content"]) < knowledge.MAX_CONTEXT_CHARS + 400 for it in closed)


def test_truncate_context():
    text = "One sentence here. " * 200
    cut = knowledge.truncate_context(text)
    assert len(cut) <= knowledge.MAX_CONTEXT_CHARS and cut.endswith(".")
    assert knowledge.truncate_context("short") == "short"
