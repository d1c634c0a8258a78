"""Offline proficiency judge, learnt: a dialogue-act classifier on the all-MiniLM-L6-v2 encoder.

The classifier (src/ftguard/assets/judges/act_classifier.safetensors, about 0.4 MB, no pickle) maps one agent
utterance to a set of SGD dialogue acts: REQUEST(slot), INFORM(slot), OFFER(slot) with their slot concept,
and the slot-less CONFIRM, NOTIFY_SUCCESS, NOTIFY_FAILURE, REQ_MORE, GOODBYE, INFORM_COUNT, OFFER_INTENT.
It is trained on the SGD hotel train split's agent turns and measured on dev by
`python scripts/train_act_classifier.py` (which rebuilds the file; its dev numbers are in the file's
metadata and printed by `ftguard judge-check`).

Correct means the same next step as the gold turn, exactly as for `act_match`: the primary act (first in
PRIORITY: outcome of the booking first, small talk last) of the predicted acts equals the gold primary act,
and when that act is REQUEST, at least one requested slot is a gold requested slot. Text after a fake next
turn ("User:") is dropped. No gold acts -> error, never a pass.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import ftguard
from ftguard.errors import JudgeError
from ftguard.judges._act_rules import canon_slot
from ftguard.judges._reply import cut_at_next_turn
from ftguard.judges.act_match import judge_tags
from ftguard.judges.base import Judge, Verdict
from ftguard.registry import JUDGES

CLASSIFIER_PATH = Path(ftguard.__file__).parent / "assets" / "judges" / "act_classifier.safetensors"
SLOTTED = frozenset({"REQUEST", "INFORM", "OFFER"})


def turn_labels(acts: Sequence[dict]) -> set[str]:
    """Gold label set of one SGD turn: {"REQUEST(check_in_date)", "CONFIRM", ...}."""
    return {f"{a['act']}({canon_slot(a.get('slot', ''))})" if a["act"] in SLOTTED and a.get("slot") else a["act"]
            for a in acts}


def _head_cls() -> Any:
    import torch

    class ActHead(torch.nn.Module):
        def __init__(self, dim: int, hidden: int, n_labels: int) -> None:
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                           torch.nn.Linear(hidden, n_labels))

        def forward(self, x: Any) -> Any:
            return self.net(x)

    return ActHead


def __getattr__(name: str) -> Any:  # ActHead is built lazily so importing the judges does not import torch
    if name == "ActHead":
        return _head_cls()
    raise AttributeError(name)


@lru_cache(maxsize=2)
def load_classifier(path: str = str(CLASSIFIER_PATH)) -> tuple[Any, list[str], dict[str, str]]:
    """(head, labels, metadata) from the shipped safetensors file."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise JudgeError(f"{path}: act classifier weights missing; rebuild with scripts/train_act_classifier.py")
    with safe_open(path, "pt") as f:
        meta = dict(f.metadata() or {})
    labels = json.loads(meta["labels"])
    state = load_file(path)
    head = _head_cls()(state["net.0.weight"].shape[1], int(meta["hidden"]), len(labels))
    head.load_state_dict(state)
    return head.eval(), labels, meta


def label_sets(probs: Any, labels: Sequence[str], fallback: bool = False) -> list[set[str]]:
    """Per row of sigmoid probabilities, the labels above 0.5. With `fallback`, a row where none passes gets
    its most likely label (right for real agent turns, which always perform some act; the judge does not use
    it, so a reply that looks like no agent act is tagged with none)."""
    return [{labels[i] for i in (row > 0.5).nonzero().flatten().tolist()}
            or ({labels[int(row.argmax())]} if fallback else set()) for row in probs]


def classify(texts: Sequence[str], fallback: bool = False) -> list[set[str]]:
    """Predicted act label set for each agent utterance (see `label_sets`)."""
    import torch

    from ftguard.judges.encoder import encode

    head, labels, _ = load_classifier()
    with torch.no_grad():
        return label_sets(torch.sigmoid(head(encode(list(texts)))), labels, fallback)


def judge_labels(pred: set[str], gold_acts: Sequence[dict]) -> Verdict:
    """The `act_match` next-step criterion, on classifier labels ("REQUEST(location)" -> (REQUEST, location))."""
    tags = {(lab.split("(")[0], lab[lab.index("(") + 1:-1] if "(" in lab else "") for lab in pred}
    return judge_tags(tags, gold_acts)


@JUDGES.register("act_classifier")
def act_classifier() -> Judge:
    """MiniLM dialogue-act classifier vs the gold SGD acts of the turn (offline, deterministic)."""

    def judge(items, responses) -> list[Verdict]:
        turns = [cut_at_next_turn(r) for r in responses]
        preds = classify(turns) if turns else []
        out = []
        for it, turn, pred in zip(items, turns, preds, strict=True):
            if not turn:
                out.append(Verdict(0.0, "wrong", "empty reply"))
            else:
                out.append(judge_labels(pred, it.meta.get("gold_acts") or []))
        return out

    return Judge("act_classifier", "3", judge, labels={"correct": 1.0, "wrong": 0.0}, needs=frozenset({"gold_acts"}))
