"""The Judge contract: a batch of probe items and responses in, one Verdict per response out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ftguard.probes.base import ProbeItem


@dataclass(frozen=True)
class Verdict:
    score: float  # 1.0 = correct / safe; 0.0 = wrong / unsafe; NaN = the judge failed (never counted as a pass)
    label: str = ""  # e.g. "correct", "counters", "neutral", "agrees", "error"
    explanation: str = ""  # what the judge saw or said, kept for audit


class Judge(Protocol):
    name: str
    version: str  # bump when the rubric or the logic changes; part of every cache key

    def __call__(self, items: Sequence[ProbeItem], responses: Sequence[str], /) -> list[Verdict]: ...


@dataclass
class FunctionJudge:
    """Adapter that gives a plain batch function the Judge attributes."""

    name: str
    version: str
    fn: object

    def __call__(self, items, responses):  # noqa: D401 - protocol method
        if len(items) != len(responses):
            raise ValueError(f"judge {self.name}: {len(items)} items but {len(responses)} responses")
        return self.fn(items, responses)
