"""Offline proficiency judge: does the agent reply take the same next dialogue step as the gold SGD turn?

Correctness, precisely:
- The *gold next step* is the set of gold act types in `item.meta["gold_acts"]`, plus, for REQUEST, the
  requested slots. Its *primary act* is the gold act type that comes first in `PRIORITY`:
  NOTIFY_FAILURE > NOTIFY_SUCCESS > CONFIRM > OFFER > INFORM_COUNT > REQUEST > INFORM > OFFER_INTENT >
  REQ_MORE > GOODBYE (outcome of the booking first, small talk last).
- `tag_acts` tags the response with (act, slot) pairs; its primary act is chosen with the same order.
- The response is **correct** when its primary act equals the gold primary act and, when that act is
  REQUEST, it requests at least one gold requested slot. Slots are compared as concepts, so service
  spellings agree: destination/where_to/location -> location, place_name -> hotel_name, and
  number_of_days/stay_length/check_out_date -> stay (asking "how long" or "until when" is the same step).
- Taking the *highest-priority* predicted act (not "any predicted act") means a reply that spams every act
  ("Booked! Anything else? Bye") is judged by its strongest claim and does not pass everything.
- Text after a fake next turn ("User:", "USER:", "Customer:") is dropped: small models often go on
  writing both sides, and the judge scores only the agent's own turn.
- No gold acts in meta -> Verdict(nan, "error"): a judge failure never counts as a pass.

Measure the tagger on real SGD turns: `python scripts/eval_act_tagger.py`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ftguard.judges._act_rules import PRIORITY, canon_slot, tag_acts
from ftguard.judges._reply import cut_at_next_turn
from ftguard.judges.base import Judge, Verdict
from ftguard.registry import JUDGES

__all__ = ["PRIORITY", "act_match", "canon_slot", "gold_step", "judge_tags", "judge_turn", "primary_act", "tag_acts"]



def primary_act(acts: set[str] | list[str]) -> str | None:
    """The act of `acts` that comes first in PRIORITY, or None."""
    ranked = [a for a in PRIORITY if a in set(acts)]
    return ranked[0] if ranked else None


def gold_step(gold_acts: Sequence[dict]) -> tuple[str | None, set[str]]:
    """(gold primary act, concept slots requested by the gold turn)."""
    primary = primary_act([a["act"] for a in gold_acts])
    slots = {canon_slot(a.get("slot", "")) for a in gold_acts if a["act"] == "REQUEST"} - {""}
    return primary, slots


def _fmt(acts: set[tuple[str, str]]) -> str:
    return ",".join(sorted(f"{a}({s})" if s else a for a, s in acts)) or "none"


def judge_tags(tags: set[tuple[str, str]], gold_acts: Sequence[dict]) -> Verdict:
    """Score predicted (act, slot concept) tags against the gold acts: the next-step criterion above."""
    gold_primary, gold_slots = gold_step(gold_acts)
    gold_str = _fmt({(a["act"], canon_slot(a.get("slot", ""))) for a in gold_acts})
    if gold_primary is None:
        return Verdict(float("nan"), "error", f"no usable gold acts in meta: {list(gold_acts)!r}")
    pred_primary = primary_act({a for a, _ in tags})
    ok = pred_primary == gold_primary
    note = ""
    if ok and gold_primary == "REQUEST":
        asked = {s for a, s in tags if a == "REQUEST"}
        ok = bool(asked & gold_slots)
        note = f" requested={sorted(asked)} gold_requested={sorted(gold_slots)}"
    expl = f"gold={gold_str} (primary {gold_primary}) predicted={_fmt(tags)} (primary {pred_primary}){note}"
    return Verdict(float(ok), "correct" if ok else "wrong", expl)


def judge_turn(response: str, gold_acts: Sequence[dict], service_results: Sequence[dict] | None = None) -> Verdict:
    """Score one agent reply against the gold acts of the turn it should have produced."""
    turn = cut_at_next_turn(response)
    return judge_tags(tag_acts(turn, service_results), gold_acts)


@JUDGES.register("act_match")
def act_match() -> Judge:
    """Rule-based dialogue-act match against the gold SGD agent turn (offline, deterministic).

    Needs `item.meta["gold_acts"]` (list of {"act", "slot", "values"}) and optionally
    `item.meta["service_results"]` (the backend rows, whose hotel names mark an OFFER).
    """

    def judge(items, responses) -> list[Verdict]:
        return [
            judge_turn(r, it.meta.get("gold_acts") or [], it.meta.get("service_results"))
            for it, r in zip(items, responses, strict=True)
        ]

    return Judge("act_match", "3", judge, labels={"correct": 1.0, "wrong": 0.0}, needs=frozenset({"gold_acts"}))
