"""Measure the act_match judge on real SGD hotel agent turns.

    python scripts/eval_act_tagger.py                 # dev split (the reported numbers)
    python scripts/eval_act_tagger.py --split train --show 30

Prints three numbers:
- gold accuracy: the judge says "correct" when given the gold utterance itself (recall of the rules);
- mismatch false-positive rate: the judge says "correct" when given another turn's utterance whose gold
  primary act type differs (it should say "wrong");
- REQUEST-slot false-positive rate: another REQUEST turn that asks for none of the gold slots.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from pathlib import Path

from ftguard.judges.act_match import canon_slot, gold_step, judge_turn

DEFAULT_DATA = Path("/work/shared/data/sgd_hotels")


def load_turns(path: Path) -> list[dict]:
    """Every SYSTEM turn with its gold acts and the latest backend results seen so far in its dialogue."""
    turns = []
    for line in path.read_text().splitlines():
        dialogue = json.loads(line)
        results = None
        for t in dialogue["turns"]:
            if t["speaker"] != "SYSTEM":
                continue
            frame = t["frames"][0]
            results = frame.get("service_results") or results
            acts = [{"act": a["act"], "slot": a["slot"], "values": a["values"]} for a in frame["actions"]]
            turns.append({"id": dialogue["dialogue_id"], "text": t["utterance"], "acts": acts, "results": results})
    return turns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with train.jsonl / dev.jsonl")
    ap.add_argument("--split", default="dev", choices=["train", "dev"])
    ap.add_argument("--show", type=int, default=0, help="print this many misjudged gold turns")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    turns = load_turns(args.data / f"{args.split}.jsonl")
    rng = random.Random(args.seed)
    per_act, hits, errors = Counter(), Counter(), []
    for t in turns:
        primary, _ = gold_step(t["acts"])
        v = judge_turn(t["text"], t["acts"], t["results"])
        per_act[primary] += 1
        hits[primary] += v.score == 1.0
        if v.score != 1.0:
            errors.append(f"{t['text']!r}\n    {v.explanation}")
    n_gold = sum(per_act.values())
    print(f"split={args.split} turns={n_gold}")
    print(f"gold accuracy: {sum(hits.values()) / n_gold:.3f}")
    for act in sorted(per_act, key=lambda a: -per_act[a]):
        print(f"  {act:15s} {hits[act] / per_act[act]:.3f}  (n={per_act[act]})")

    fp = n_mis = 0
    for t in turns:  # one mismatched partner per turn, drawn from a different primary act
        primary, _ = gold_step(t["acts"])
        partner = rng.choice([u for u in turns if gold_step(u["acts"])[0] != primary])
        n_mis += 1
        fp += judge_turn(partner["text"], t["acts"], t["results"]).score == 1.0
    print(f"mismatch false-positive rate (different act): {fp / n_mis:.3f}  (n={n_mis})")

    requests = [t for t in turns if gold_step(t["acts"])[0] == "REQUEST"]
    fp = n_slot = 0
    for t in requests:
        slots = gold_step(t["acts"])[1]
        others = [u for u in requests if not ({canon_slot(a["slot"]) for a in u["acts"]} & slots)]
        if others:
            n_slot += 1
            fp += judge_turn(rng.choice(others)["text"], t["acts"], t["results"]).score == 1.0
    print(f"mismatch false-positive rate (REQUEST, other slots): {fp / max(n_slot, 1):.3f}  (n={n_slot})")
    for e in errors[: args.show]:
        print(e)


if __name__ == "__main__":
    main()
