"""Turn Schema-Guided Dialogue (SGD) hotel dialogues into chat messages for training and probing.

USER turns become `user` messages and SYSTEM turns `assistant` messages, after a hotel-agent system prompt.
Where a SYSTEM turn queried the backend (`service_call` + `service_results`), the results are appended to
the user message before it as a bracketed block, so the agent sees them before it answers and the roles
still alternate strictly:

    I'd like a hotel in London.

    [Search results (10 found): 1. place_name=45 Park Lane, star_rating=5, ...; 2. ...]

    python -c "from ftguard.data import load_sgd, dialogue_to_messages; print(dialogue_to_messages(load_sgd('dev')[0]))"
"""

from __future__ import annotations

from typing import Any

from ftguard.errors import DataError

HOTEL_SYSTEM_PROMPT = (
    "You are a hotel-booking assistant. You help users search for and book hotels and rental houses. "
    "Ask for missing details (such as the city, the dates or the number of rooms) one at a time. "
    "Confirm the details with the user before you make a booking. Only mention hotels, prices and other "
    "facts that appear in the search or booking results given to you in square brackets. Keep replies short."
)
MAX_RESULTS = 3  # results shown per backend call; the count of all results is stated too


def _frame(turn: dict[str, Any]) -> dict[str, Any]:
    frames = turn.get("frames") or [{}]
    return frames[0]


def _format_result(result: dict[str, Any]) -> str:
    # Name fields first so the entity is the first thing the model reads; empty fields carry no information.
    keys = sorted(result, key=lambda k: ("name" not in k, list(result).index(k)))
    return ", ".join(f"{k}={result[k]}" for k in keys if result[k] not in ("", None))


def results_context(frame: dict[str, Any]) -> str | None:
    """The bracketed backend-results block for a SYSTEM frame, or None when the turn made no backend call.

    Search calls list up to `MAX_RESULTS` results and the total count; booking calls show the booking
    record, or say that the booking failed when the backend returned nothing.
    """
    call = frame.get("service_call")
    if not call:
        return None
    results = frame.get("service_results") or []
    shown = "; ".join(f"{i}. {_format_result(r)}" for i, r in enumerate(results[:MAX_RESULTS], 1))
    if str(call.get("method", "")).startswith("Search"):
        return f"[Search results ({len(results)} found): {shown}]" if results else "[Search results: none found]"
    if not results:
        return "[Booking result: failed, nothing was booked]"
    return f"[Booking result: {_format_result(results[0])}]"


def _check_turns(dialogue: dict[str, Any]) -> list[dict[str, Any]]:
    turns = dialogue.get("turns") or []
    did = dialogue.get("dialogue_id", "?")
    for i, turn in enumerate(turns):
        expected = "USER" if i % 2 == 0 else "SYSTEM"
        if turn.get("speaker") != expected:
            raise DataError(
                f"SGD dialogue {did}: turn {i} is from {turn.get('speaker')!r}, expected {expected!r} "
                "(dialogues must start with USER and alternate)"
            )
    return turns


def dialogue_to_messages(dialogue: dict[str, Any], system_prompt: str = HOTEL_SYSTEM_PROMPT) -> list[dict[str, str]]:
    """Convert one SGD dialogue to chat messages: system prompt, then alternating user/assistant turns.

    Message `1 + t` is turn `t`, so `messages[: 1 + t]` is the prompt for SYSTEM turn `t` (its backend
    results are already in the user message before it).

    Args:
        dialogue: One record of `sgd_hotels/*.jsonl` (`dialogue_id`, `turns`).
        system_prompt: The agent's instructions; the default describes the hotel-booking agent.

    Raises:
        DataError: the turns do not start with USER and alternate USER/SYSTEM.
    """
    messages = [{"role": "system", "content": system_prompt}]
    for turn in _check_turns(dialogue):
        if turn["speaker"] == "USER":
            messages.append({"role": "user", "content": turn["utterance"]})
            continue
        context = results_context(_frame(turn))
        if context:
            messages[-1]["content"] += f"\n\n{context}"
        messages.append({"role": "assistant", "content": turn["utterance"]})
    return messages


def gold_acts(turn: dict[str, Any]) -> list[dict[str, Any]]:
    """The dialogue acts of a turn as `{"act", "slot", "values"}` dicts, over all its frames."""
    return [
        {"act": a["act"], "slot": a.get("slot", ""), "values": list(a.get("values", []))}
        for frame in turn.get("frames", [])
        for a in frame.get("actions", [])
    ]


def service_results(turn: dict[str, Any], limit: int = MAX_RESULTS) -> list[dict[str, Any]]:
    """The first `limit` backend results the SYSTEM turn could use (empty when it made no call)."""
    return [dict(r) for r in (_frame(turn).get("service_results") or [])[:limit]]


def agent_turn_positions(dialogue: dict[str, Any]) -> list[int]:
    """Indices of SYSTEM turns that follow a USER turn, i.e. the turns an agent can be asked to write."""
    turns = dialogue.get("turns") or []
    speakers = [t.get("speaker") for t in turns]
    return [i for i in range(1, len(turns)) if (speakers[i - 1], speakers[i]) == ("USER", "SYSTEM")]
