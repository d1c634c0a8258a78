"""SGD -> chat conversion: roles alternate, backend results are visible, agent turns are the gold utterances."""

from __future__ import annotations

import pytest

from ftguard.data import (
    BUILTIN_DATA,
    HOTEL_SYSTEM_PROMPT,
    agent_turn_positions,
    dialogue_to_messages,
    gold_acts,
    load_advbench,
    load_dolly,
    load_sgd,
    load_toxigen,
    load_xstest,
    results_context,
)
from ftguard.errors import DataError


@pytest.fixture(scope="module")
def dialogues():
    return load_sgd("train") + load_sgd("dev")


def test_builtin_counts():
    assert BUILTIN_DATA.is_dir()
    assert (len(load_sgd("train")), len(load_sgd("dev"))) == (457, 56)
    assert len(load_toxigen()) == 615
    assert len(load_dolly()) == 490
    assert len(load_advbench()) == 520
    assert len(load_xstest()) == 450
    with pytest.raises(DataError, match="Unknown SGD split 'test'"):
        load_sgd("test")


def test_loaders_return_fresh_copies():
    load_sgd("dev")[0]["turns"].clear()
    assert load_sgd("dev")[0]["turns"]


def test_conversion_alternates_and_keeps_utterances(dialogues):
    for d in dialogues:
        msgs = dialogue_to_messages(d)
        assert msgs[0] == {"role": "system", "content": HOTEL_SYSTEM_PROMPT}
        roles = [m["role"] for m in msgs[1:]]
        assert roles == ["user", "assistant"] * (len(roles) // 2)
        for t, turn in enumerate(d["turns"]):
            msg = msgs[1 + t]
            if turn["speaker"] == "SYSTEM":
                assert msg["content"] == turn["utterance"]
            else:
                assert msg["content"].startswith(turn["utterance"])


def test_results_visible_before_the_agent_turn(dialogues):
    checked = 0
    for d in dialogues:
        msgs = dialogue_to_messages(d)
        for t, turn in enumerate(d["turns"]):
            frame = turn["frames"][0]
            if turn["speaker"] != "SYSTEM" or "service_call" not in frame:
                continue
            user_msg = msgs[t]["content"]  # message 1 + (t - 1): the user turn before
            assert user_msg.endswith("]") and "\n\n[" in user_msg
            for result in frame["service_results"][:1]:
                name = next(v for k, v in result.items() if "name" in k or k == "address")
                assert name in user_msg
            if frame["service_results"] and frame["service_call"]["method"].startswith("Search"):
                assert f"({len(frame['service_results'])} found)" in user_msg
            checked += 1
    assert checked > 500


def test_results_context_formats():
    results = [{"a": "1", "hotel_name": "X", "empty": ""}] * 5
    search = {"service_call": {"method": "SearchHotel"}, "service_results": results}
    text = results_context(search)
    assert text.startswith("[Search results (5 found): 1. hotel_name=X, a=1; 2.") and "4." not in text
    assert "empty" not in text
    none_found = results_context({"service_call": {"method": "SearchHotel"}, "service_results": []})
    assert none_found == "[Search results: none found]"
    assert "failed" in results_context({"service_call": {"method": "ReserveHotel"}, "service_results": []})
    assert results_context({"actions": []}) is None


def test_gold_acts_and_positions():
    d = load_sgd("dev")[0]
    assert gold_acts(d["turns"][1]) == [{"act": "REQUEST", "slot": "location", "values": []}]
    positions = agent_turn_positions(d)
    assert positions == list(range(1, len(d["turns"]), 2))
    assert agent_turn_positions({"turns": [{"speaker": "SYSTEM"}, {"speaker": "USER"}, {"speaker": "SYSTEM"}]}) == [2]


def test_bad_dialogue_raises():
    with pytest.raises(DataError, match="turn 1 is from 'USER', expected 'SYSTEM'"):
        dialogue_to_messages({"dialogue_id": "x", "turns": [{"speaker": "USER", "utterance": "a"}] * 2})
