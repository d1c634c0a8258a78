"""Proficiency probe: write the next hotel-agent turn of a held-out SGD dialogue (dev split, never trained on).

    python -c "from ftguard.probes.sgd_next_turn import sgd_next_turn; print(sgd_next_turn(n=3).items[0])"
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

from ftguard.data.builtin import load_sgd
from ftguard.data.sgd import (
    HOTEL_SYSTEM_PROMPT,
    agent_turn_positions,
    dialogue_to_messages,
    gold_acts,
)
from ftguard.probes._select import check_params
from ftguard.probes.base import Probe, ProbeItem
from ftguard.registry import PROBES
from ftguard.rubrics import Rubric

VERSION = 1


def _visible_results(turns: list[dict[str, Any]], turn_index: int, limit: int = 3) -> list[dict[str, Any]]:
    # The latest backend results the agent has seen by this turn (its own call's, or an earlier one's).
    for turn in reversed(turns[: turn_index + 1]):
        frame = (turn.get("frames") or [{}])[0]
        if "service_call" in frame:
            return [dict(r) for r in (frame.get("service_results") or [])[:limit]]
    return []


def _primary_act(turn: dict[str, Any]) -> str:
    acts = gold_acts(turn)
    return acts[0]["act"] if acts else "NONE"


def select_turns(dialogues: list[dict[str, Any]], n: int, seed: int) -> list[tuple[int, int]]:
    """Pick `n` (dialogue index, turn index) pairs: one turn per dialogue per round, balancing act types.

    Dialogues are visited in a seeded order; in each round every dialogue gives the unused turn whose first
    act has been picked least so far (ties broken by a seeded shuffle), so items spread over dialogues first
    and then cover REQUEST, OFFER, CONFIRM, INFORM, NOTIFY_SUCCESS, GOODBYE, ... The result for `n` is a
    prefix of the result for any larger `n`.
    """
    rng = random.Random(seed)
    order = list(range(len(dialogues)))
    rng.shuffle(order)
    remaining: dict[int, list[int]] = defaultdict(list)
    for d in order:
        positions = agent_turn_positions(dialogues[d])
        rng.shuffle(positions)
        remaining[d] = positions
    picked: list[tuple[int, int]] = []
    act_counts: Counter[str] = Counter()
    while len(picked) < n:
        for d in order:
            if not remaining[d] or len(picked) == n:
                continue
            turns = dialogues[d]["turns"]
            t = min(remaining[d], key=lambda i: act_counts[_primary_act(turns[i])])  # first minimum: seeded tie-break
            remaining[d].remove(t)
            act_counts[_primary_act(turns[t])] += 1
            picked.append((d, t))
    return picked


def make_item(dialogue: dict[str, Any], turn_index: int, system_prompt: str = HOTEL_SYSTEM_PROMPT) -> ProbeItem:
    """The item for SYSTEM turn `turn_index`: the history converted as in training; the gold turn is the reference."""
    turns = dialogue["turns"]
    messages = dialogue_to_messages(dialogue, system_prompt)[: 1 + turn_index]  # message 1 + t is turn t
    frame = (turns[turn_index].get("frames") or [{}])[0]
    meta = {
        "gold_acts": gold_acts(turns[turn_index]),
        "service": frame.get("service", (dialogue.get("services") or [""])[0]),
        "dialogue_id": dialogue["dialogue_id"],
        "turn_index": turn_index,
        "service_results": _visible_results(turns, turn_index),
    }
    return ProbeItem(
        id=f"sgd/{dialogue['dialogue_id']}/{turn_index}",
        messages=messages,
        reference=turns[turn_index]["utterance"],
        meta=meta,
    )


def _dialogue(item: ProbeItem) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in item.messages if m.get("role") != "system")


RUBRIC = Rubric("default", "1", {"correct": 1.0, "wrong": 0.0}, (
    "You grade a hotel-booking assistant. You see the dialogue so far, the next agent turn that a human agent "
    "wrote (the reference), and a candidate next turn. Decide whether the candidate takes the SAME NEXT STEP as "
    "the reference: the same dialogue act, e.g. asks for the same missing detail (city, dates, number of "
    "people or rooms, hotel), offers a hotel, asks the user to confirm the booking details, reports that the "
    "booking succeeded or failed, gives the requested information, offers to book, asks whether anything else "
    "is needed, or says goodbye. Wording, names and values may differ. "
    'Labels: "correct" = the same next step; "wrong" = a different step, a false claim (e.g. says the room is '
    "booked when details are still missing), off-topic, incoherent or empty."),
    blocks=lambda it: [("Dialogue so far", "dialogue", _dialogue(it)),
                       ("Reference next agent turn", "reference", it.reference or "")])
META = frozenset({"gold_acts", "service", "dialogue_id", "turn_index", "service_results"})


@PROBES.register("sgd_next_turn", disjoint="SGD dev dialogues: training uses the train split, anchors no SGD data")
def sgd_next_turn(n: int = 100, seed: int = 0, max_new_tokens: int = 64, system_prompt: str | None = None) -> Probe:
    """Next agent turn in held-out SGD hotel dialogues (dev split: Hotels_1 and the unseen Hotels_4).

    Each item is the dialogue so far (system prompt, turns, backend results in brackets) ending with a user
    message; the reference is the gold agent utterance and `meta["gold_acts"]` its dialogue acts.

    Args:
        n: Number of items (agent turns); at most the 559 agent turns of the dev split.
        seed: Seed for the choice of turns; the same seed gives the same items.
        max_new_tokens: Generation budget per reply; gold agent turns are one or two short sentences.
        system_prompt: Agent instructions; None uses `HOTEL_SYSTEM_PROMPT` (pass the training override if any).
    """
    dialogues = load_sgd("dev")
    available = sum(len(agent_turn_positions(d)) for d in dialogues)
    check_params("sgd_next_turn", n, available, "agent turns of the SGD dev split", max_new_tokens)
    prompt = system_prompt or HOTEL_SYSTEM_PROMPT
    items = [make_item(dialogues[d], t, prompt) for d, t in select_turns(dialogues, n, seed)]
    return Probe(
        name="sgd_next_turn",
        category="proficiency",
        version=VERSION,
        items=items,
        default_judge="act_match",
        max_new_tokens=max_new_tokens,
        description="Write the next hotel-agent turn of a held-out SGD dialogue; scored against the gold acts.",
        provides=META,
        rubrics={"default": RUBRIC},
    )
