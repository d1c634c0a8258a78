"""Probes are data: items with chat messages, plus what the probe is and needs, declared up front.

A probe says which category it feeds (ftguard.categories), how it is scored (`scoring`: replies are
generated and judged, or choices are scored by log-likelihood), whether the pipeline also records the
judge-free log-likelihood of its references (`reference_loglik`), which item `meta` keys it provides
(`provides`; judges declare the keys they need and `ftguard validate` checks the pair), and the rubrics it
offers the `llm` judge. The items it may ever use are declared at registration (`reserves`, ftguard/pools.py),
so anchor, replay and alignment data can exclude them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ftguard.categories import Category
from ftguard.rubrics import Rubric

Scoring = Literal["generate", "choices"]


@dataclass(frozen=True)
class ProbeItem:
    id: str  # stable across runs: "dolly/1043"
    messages: list[dict[str, str]]  # chat format; the pipeline applies the chat template
    reference: str | None = None  # human reference answer (knowledge) or gold agent turn (proficiency)
    meta: dict[str, Any] = field(default_factory=dict)  # judge inputs: gold acts, the toxic statement, ...


@dataclass(frozen=True)
class Probe:
    name: str
    category: Category
    version: int  # bump when items or prompts change; part of every cache key
    items: Sequence[ProbeItem]
    default_judge: str  # registered judge name used when the config names none
    max_new_tokens: int = 96
    description: str = ""
    scoring: Scoring = "generate"
    reference_loglik: bool = False  # also record the mean log-likelihood of each item's reference answer
    provides: frozenset[str] = frozenset()  # meta keys every item carries
    rubrics: Mapping[str, Rubric] = field(default_factory=dict)  # for the llm judge, by name
    # scoring "choices": score(model, tokenizer, items) -> [(score, label, explanation)] per item, or None when the
    # model cannot be scored so (an endpoint); scoring_params go into every cache key of these results
    score: Callable[[Any, Any, Sequence[ProbeItem]], list[tuple[float, str, str]] | None] | None = \
        field(default=None, repr=False, compare=False)
    scoring_params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_reference(self) -> bool:
        return bool(self.items) and all(it.reference for it in self.items)

    def __post_init__(self) -> None:
        if self.scoring == "choices" and self.score is None:
            raise AssertionError(f"probe {self.name}: scoring 'choices' needs a score function")
        for it in self.items:
            missing = self.provides - it.meta.keys()
            if missing:  # a probe's declaration is a promise to every judge: check it where it is made
                raise AssertionError(f"probe {self.name}: item {it.id} lacks declared meta {sorted(missing)}")
