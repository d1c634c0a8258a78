"""Probes are data: items with chat messages, a category, and the default judge that scores them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Category = Literal["proficiency", "safety", "knowledge"]


@dataclass(frozen=True)
class ProbeItem:
    id: str  # stable across runs: "dolly/1043"
    messages: list[dict[str, str]]  # chat format; the pipeline applies the chat template
    category: Category
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
