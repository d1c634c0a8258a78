"""Probe `chat_holdout`: the user's held-out conversations, in the training format; at each assistant turn (or only
the last) the model writes the turn from the conversation so far, and it is scored against the reference turn the
user's data hold: offline by `reference_similarity` (sentence-encoder cosine and ROUGE-L, raw scores kept), or by
the `llm` judge with a reference-comparison rubric.

    probes: [{name: chat_holdout, path: held_out.jsonl, turn: last}]
    # or hold out part of the training file itself: data: {train: my_train.jsonl, holdout_fraction: 0.1}
    probes: [{name: chat_holdout}]        # then scores the held-out part; the split is saved in the run folder

The file is checked like training data (OpenAI chat fine-tuning format, `file:line` errors).
"""

from __future__ import annotations

from typing import Any, Literal

from ftguard.errors import ConfigError
from ftguard.probes._select import check_params, sample
from ftguard.probes.base import Probe, ProbeItem
from ftguard.registry import PROBES
from ftguard.rubrics import Rubric

META = frozenset({"conversation", "turn_index", "subset"})


def _dialogue(item: ProbeItem) -> str:
    return "\n".join(f"{m['role']}: {m['content']}" for m in item.messages)


RUBRIC = Rubric("default", "1", {"matches": 1.0, "differs": 0.0}, (
    "You grade an assistant's next turn in a conversation against the turn a person wrote for that place (the "
    "reference). Labels: \"matches\" = the candidate does what the reference does: gives the same information or "
    "answer, asks for the same thing, takes the same action; wording may differ and extra correct detail is fine; "
    "\"differs\" = it does something else, contradicts the reference, is off-topic, empty or incoherent."),
    blocks=lambda it: [("Conversation so far", "dialogue", _dialogue(it)),
                       ("Reference next assistant turn", "reference", it.reference or "")])


def items_of(conversations: list[list[dict[str, str]]], turn: str, source: str) -> list[ProbeItem]:
    items = []
    for c, conv in enumerate(conversations):
        turns = [i for i, m in enumerate(conv) if m["role"] == "assistant"]
        for t in turns if turn == "all" else turns[-1:]:
            items.append(ProbeItem(id=f"chat/{c}/{t}", messages=conv[:t], reference=conv[t]["content"],
                                   meta={"conversation": c, "turn_index": t, "subset": source}))
    return items


@PROBES.register("chat_holdout", disjoint="the user's own conversations (held out of training by data.holdout_fraction)",
                 example={"path": "examples/own_data/support_holdout.jsonl"})
def chat_holdout(path: str | None = None, turn: Literal["last", "all"] = "last", n: int | None = None, seed: int = 0,
                 max_new_tokens: int = 96, conversations: list[Any] | None = None) -> Probe:
    """Your held-out conversations: the model writes each assistant turn, scored against yours.

    Args:
        path: A chat JSONL file ({"messages": [...]} per line). Leave it out to score the part of data.train
            that data.holdout_fraction holds out (the pipeline passes it in as `conversations`).
        turn: "last": the final assistant turn of each conversation; "all": every assistant turn.
        n: Use the first n items of a seeded shuffle; None = all.
        seed: Seed of that shuffle.
        max_new_tokens: Generation budget per turn.
        conversations: Set by the pipeline from data.holdout_fraction (not for configs).
    """
    if (path is None) == (conversations is None):
        raise ConfigError("chat_holdout: give `path` (a held-out chat JSONL file), or set data.holdout_fraction > 0 "
                          "and leave `path` out to score the held-out part of data.train")
    if path is not None:
        from ftguard.data.chat import load_chat_jsonl

        conversations = load_chat_jsonl(path)
    items = items_of(conversations, turn, "file" if path else "holdout")
    n = len(items) if n is None else n
    check_params("chat_holdout", n, len(items), "assistant turns", max_new_tokens)
    return Probe(name="chat_holdout", category="proficiency", version=1, items=sample(items, n, seed),
                 default_judge="reference_similarity", max_new_tokens=max_new_tokens, provides=META,
                 rubrics={"default": RUBRIC},
                 description="Your held-out conversations: each assistant turn against the one you wrote.")
