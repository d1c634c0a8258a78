"""Train (or rebuild) the dialogue-act classifier behind the `act_classifier` judge, and measure it.

    python scripts/train_act_classifier.py            # trains on SGD hotel train, measures on dev, writes
                                                      # src/ftguard/assets/judges/act_classifier.safetensors

Input: one SGD hotel agent utterance, embedded by the offline all-MiniLM-L6-v2 encoder (frozen).
Output: a multi-label set of dialogue acts: REQUEST(slot), INFORM(slot) and OFFER(slot) carry their slot
concept (check_in_date, location, hotel_name, price, ...; service spellings unified by `canon_slot`), the
other acts (CONFIRM, NOTIFY_SUCCESS, NOTIFY_FAILURE, REQ_MORE, GOODBYE, INFORM_COUNT, OFFER_INTENT) are
slot-less. Head: a one-hidden-layer MLP, sigmoid per label, threshold 0.5 (the top label when none passes).

Hyper-parameters are fixed below and were chosen on a 10% hold-out of the *train* split; dev is only
measured. Printed numbers (dev gold agent utterances):
- exact: predicted label set == gold label set (act type + slot, every act of the turn);
- step:  the judge's criterion on the gold utterance itself: same primary act, and for REQUEST at least one
  gold requested slot (see ftguard.judges.act_classifier).
Deterministic on CPU for a given seed.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import save_file

from ftguard.data import load_sgd
from ftguard.judges.act_classifier import (
    CLASSIFIER_PATH,
    SLOTTED,
    ActHead,
    judge_labels,
    label_sets,
    turn_labels,
)
from ftguard.judges.encoder import ENCODER_NAME, encode

MIN_COUNT = 3  # labels seen fewer times in train are not learnt (a dev turn that needs one counts as a miss)


def user_turns(split: str) -> list[str]:
    """User utterances: negatives (no agent act), so that text that is not an agent move gets no label."""
    return [t["utterance"] for d in load_sgd(split) for t in d["turns"] if t["speaker"] == "USER"]


def agent_turns(split: str) -> list[dict]:
    out = []
    for d in load_sgd(split):
        for t in d["turns"]:
            if t["speaker"] == "SYSTEM":
                acts = [{"act": a["act"], "slot": a["slot"]} for a in t["frames"][0]["actions"]]
                out.append({"text": t["utterance"], "acts": acts, "labels": turn_labels(acts)})
    return out


def fit(x: torch.Tensor, y: torch.Tensor, hidden: int, epochs: int, seed: int) -> ActHead:
    torch.manual_seed(seed)
    head = ActHead(x.shape[1], hidden, y.shape[1])
    opt = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        head.train()
        for idx in torch.randperm(len(x), generator=g).split(64):
            loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return head.eval()


def predict(head: ActHead, x: torch.Tensor, labels: list[str]) -> list[set[str]]:
    with torch.no_grad():
        return label_sets(torch.sigmoid(head(x)), labels, fallback=True)


def step_ok(pred: set[str], acts: list[dict]) -> bool:
    return judge_labels(pred, acts).score == 1.0


def score(pred: list[set[str]], turns: list[dict]) -> dict[str, float]:
    n = len(turns)
    return {"n": n,
            "exact": sum(p == t["labels"] for p, t in zip(pred, turns, strict=True)) / n,
            "act_types": sum({x.split("(")[0] for x in p} == {x.split("(")[0] for x in t["labels"]}
                             for p, t in zip(pred, turns, strict=True)) / n,
            "step": sum(step_ok(p, t["acts"]) for p, t in zip(pred, turns, strict=True)) / n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--holdout", action="store_true", help="fit on 90%% of train, print the 10%% hold-out")
    ap.add_argument("--no-user-negatives", dest="user_negatives", action="store_false",
                    help="do not add SGD user utterances as negatives")
    ap.add_argument("--out", type=Path, default=CLASSIFIER_PATH)
    ap.add_argument("--show", type=int, default=0, help="print this many dev misses")
    args = ap.parse_args()

    train, dev = agent_turns("train"), agent_turns("dev")
    if args.holdout:
        g = torch.Generator().manual_seed(args.seed)
        perm = torch.randperm(len(train), generator=g).tolist()
        cut = len(train) // 10
        dev, train = [train[i] for i in perm[:cut]], [train[i] for i in perm[cut:]]
    counts = Counter(lab for t in train for lab in t["labels"])
    labels = sorted(lab for lab, c in counts.items() if c >= MIN_COUNT)
    index = {lab: i for i, lab in enumerate(labels)}
    print(f"{len(train)} train / {len(dev)} {'hold-out' if args.holdout else 'dev'} agent turns, "
          f"{len(labels)} labels; encoding with {ENCODER_NAME} ...")
    x_train, x_dev = encode([t["text"] for t in train]), encode([t["text"] for t in dev])
    y = torch.zeros(len(train), len(labels))
    for r, t in enumerate(train):
        for lab in t["labels"]:
            if lab in index:
                y[r, index[lab]] = 1.0
    negatives = user_turns("train") if args.user_negatives else []
    if negatives:
        print(f"+ {len(negatives)} user utterances as negatives (no agent act)")
        x_neg = encode(negatives)
        x_fit, y_fit = torch.cat([x_train, x_neg]), torch.cat([y, torch.zeros(len(negatives), len(labels))])
    else:
        x_fit, y_fit = x_train, y
    head = fit(x_fit, y_fit, args.hidden, args.epochs, args.seed)
    res_train = score(predict(head, x_train, labels), train)
    pred_dev = predict(head, x_dev, labels)
    res_dev = score(pred_dev, dev)
    name = "hold-out" if args.holdout else "dev"
    print(f"train: {json.dumps(res_train)}\n{name}:   {json.dumps(res_dev)}")
    misses = [(t, p) for t, p in zip(dev, pred_dev, strict=True) if p != t["labels"]]
    for t, p in misses[:args.show]:
        print(f"  {t['text']!r}\n    gold={sorted(t['labels'])} pred={sorted(p)}")
    if args.holdout:
        return
    meta = {"labels": json.dumps(labels), "encoder": ENCODER_NAME, "hidden": str(args.hidden),
            "epochs": str(args.epochs), "seed": str(args.seed), "user_negatives": str(len(negatives)), "slotted_acts": json.dumps(sorted(SLOTTED)),
            "trained_on": f"SGD hotels train split, {len(train)} agent turns",
            "dev_metrics": json.dumps(res_dev), "train_metrics": json.dumps(res_train)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(args.out), metadata=meta)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
