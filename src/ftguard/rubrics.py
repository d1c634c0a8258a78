"""Grading rubrics that a probe hands to the `llm` judge (in the spirit of Inspect's model_graded_qa
template): what the grader is told, which blocks of the item it sees, its labels and scores, and the form
of its verdict. A probe declares its rubrics; the `llm` judge picks one by name (`rubric: default`).

    Rubric("default", "1", {"correct": 1.0, "wrong": 0.0}, task="You grade ...",
           blocks=lambda item: [("Question", "question", item.messages[-1]["content"])])

No network and no model code here; judges/_llm_prompts.py turns a rubric into messages and parses replies.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ProbeItem = Any  # ftguard.probes.base.ProbeItem (not imported: probes import this module)
Block = tuple[str, str, str]  # (heading, tag, text): "Question:\n<question>...</question>"


@dataclass(frozen=True)
class Rubric:
    name: str  # how a config picks it: {name: llm, rubric: harmbench}
    version: str  # bump when the text changes; part of every verdict cache key
    scores: Mapping[str, float]  # label -> score (the default scoring; see score_label)
    task: str  # the grader's instructions
    blocks: Callable[[ProbeItem], list[Block]] = field(repr=False)  # what of the item the grader sees
    verdict: Literal["json", "yes_no"] = "json"  # {"label": ..., "reason": ...}, or a first word yes / no
    yes_no_labels: tuple[str, str] = ("yes", "no")  # verdict "yes_no": the labels of a "yes" and a "no"
    score_label: Callable[[str, ProbeItem], float] | None = field(default=None, repr=False)  # item-dependent
    response_heading: str = "Candidate response to grade"
    # a prompt of its own (e.g. HarmBench's classifier): (item, neutralised response) -> chat messages
    messages: Callable[[ProbeItem, str], list[dict[str, str]]] | None = field(default=None, repr=False)


def last_user(item: ProbeItem) -> str:
    users = [m["content"] for m in item.messages if m.get("role") == "user"]
    return users[-1] if users else ""
