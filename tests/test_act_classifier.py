"""The MiniLM dialogue-act classifier judge (offline proficiency judge) and its shipped weights."""

from __future__ import annotations

import json
import math

from ftguard.judges.act_classifier import (
    CLASSIFIER_PATH,
    classify,
    load_classifier,
    turn_labels,
)
from ftguard.probes.base import ProbeItem
from ftguard.registry import JUDGES


def test_shipped_weights_are_safetensors_with_their_labels_and_dev_accuracy() -> None:
    assert CLASSIFIER_PATH.suffix == ".safetensors" and CLASSIFIER_PATH.stat().st_size < 2_000_000
    head, labels, meta = load_classifier()
    assert "REQUEST(check_in_date)" in labels and "NOTIFY_SUCCESS" in labels and "CONFIRM" in labels
    dev = json.loads(meta["dev_metrics"])
    assert dev["n"] > 500 and dev["exact"] >= 0.90  # the target, as measured by the training script


def test_classifies_typical_agent_turns() -> None:
    got = classify(["Which city would you like to stay in?", "Your room has been booked successfully.",
                    "Is there anything else I can help you with?", "What date do you want to check in?"])
    assert got[0] == {"REQUEST(location)"}
    assert "NOTIFY_SUCCESS" in got[1]
    assert got[2] == {"REQ_MORE"}
    assert got[3] == {"REQUEST(check_in_date)"}


def test_turn_labels_unify_service_slot_names() -> None:
    acts = [{"act": "REQUEST", "slot": "where_to"}, {"act": "CONFIRM", "slot": "check_in_date"}]
    assert turn_labels(acts) == {"REQUEST(location)", "CONFIRM"}


def _item(acts: list[dict]) -> ProbeItem:
    return ProbeItem("sgd/x/1", [{"role": "user", "content": "I need a hotel."}], "gold",
                     {"gold_acts": acts})


def test_judge_checks_act_and_requested_slot() -> None:
    judge = JUDGES.create("act_classifier")
    where = [{"act": "REQUEST", "slot": "location", "values": []}]
    when = [{"act": "REQUEST", "slot": "check_in_date", "values": []}]
    v = judge([_item(where), _item(when), _item([]), _item(where)],
              ["Which city are you looking in?", "Which city are you looking in?", "Which city?", ""])
    assert (v[0].label, v[1].label, v[3].label) == ("correct", "wrong", "wrong")
    assert v[0].score == 1.0 and "requested=['location']" in v[0].explanation
    assert math.isnan(v[2].score) and v[2].label == "error"  # no gold acts: never a pass


def test_judge_ignores_a_fake_next_user_turn() -> None:
    judge = JUDGES.create("act_classifier")
    where = [{"act": "REQUEST", "slot": "location", "values": []}]
    v = judge([_item(where)], ["Which city would you like?\nUser: London. Your room is booked, goodbye!"])
    assert v[0].label == "correct"
