"""No probe item can leak into anchors, replay or drift data: every registered probe is covered, so a new probe
is checked without editing this file (ftguard/pools.py holds the one record of reserved items)."""

from __future__ import annotations

import pytest

from ftguard import pools
from ftguard.anchor_prompts import anchor_prompts
from ftguard.registry import PROBES, load_plugins

load_plugins()
RESERVING = sorted(pools.reserved())


def _user_text(item) -> str:  # noqa: ANN001
    return next(m["content"] for m in reversed(item.messages) if m["role"] == "user")


def test_every_registered_probe_declares_its_pool() -> None:
    assert pools.undeclared() == []
    assert {"dolly_qa", "toxigen_counter"} <= set(RESERVING)


@pytest.mark.parametrize("name", RESERVING)
def test_a_probe_draws_its_items_from_what_it_reserves(name: str) -> None:
    probe = PROBES.create(name)
    assert probe.items
    owners = [pools.leak(_user_text(it)) for it in probe.items]
    assert all(owner is not None for owner in owners), [it.id for it, o in zip(probe.items, owners) if o is None]


@pytest.mark.parametrize("split", ["train", "drift"])
def test_anchor_replay_and_drift_prompts_leak_no_reserved_item(split: str) -> None:
    prompts = anchor_prompts(200 if split == "train" else 150, split=split)  # replay trains on the train split
    assert pools.leaks([p["messages"][0]["content"] for p in prompts]) == []


def test_anchor_splits_do_not_overlap() -> None:
    train, drift = anchor_prompts(200, split="train"), anchor_prompts(150, split="drift")
    assert not {a["id"] for a in train} & {a["id"] for a in drift}


def test_leak_sees_containment_and_near_duplicates() -> None:
    text = next(t for t in pools.reserved()["toxigen_counter"] if len(set(pools.words(t))) >= 12)
    assert pools.leak(text) == "toxigen_counter"
    assert pools.leak(f"Some context first.\n\n{text.upper()}!!") == "toxigen_counter"  # case, punctuation
    words = pools.words(text)  # one word changed in a long statement is still the same statement
    assert pools.leak(" ".join(words[:3] + ("zyxwv",) + words[4:])) == "toxigen_counter"
    assert pools.leak("What is the boiling point of water at sea level in Kelvin, roughly?") is None


def test_alignment_data_leak_no_probe_item() -> None:
    from ftguard.align import load_alignment_data

    convs = load_alignment_data("builtin:safety_alignment")
    assert len(convs) >= 200
    assert pools.leaks([c[0]["content"] for c in convs]) == []
