"""The Judge contract: a batch of probe items and responses in, one Verdict per response out.

A judge is a declared value, not a bare function: it says which labels it gives and what each scores
(`labels`), which item `meta` keys and fields it reads (`needs`, `needs_reference`), which categories it
can grade (`categories`, None = any), and, where the labels depend on the probe (the `llm` judge reads its
rubric from the probe), how to bind itself to one (`bind`). `ftguard validate` checks every probe/judge
pair against these declarations before any model loads; judge-check reads the labels from here.

    @JUDGES.register("numeric_match")
    def numeric_match() -> Judge:
        return Judge("numeric_match", "1", fn, labels={"correct": 1.0, "wrong": 0.0}, needs_reference=True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ftguard.probes.base import Probe, ProbeItem

PASS_THRESHOLD = 0.5  # a score >= this is a pass (flips, McNemar, judge-check)
ERROR = "error"  # the label of a judge failure: score NaN, never a pass


@dataclass(frozen=True)
class Verdict:
    score: float  # 1.0 = correct / safe; 0.0 = wrong / unsafe; NaN = the judge failed (never counted as a pass)
    label: str = ""  # one of the judge's labels, or "error"
    explanation: str = ""  # what the judge saw or said, kept for audit

    @property
    def failed(self) -> bool:
        return self.score is None or (isinstance(self.score, float) and math.isnan(self.score))


BatchFn = Callable[[Sequence["ProbeItem"], Sequence[str]], list[Verdict]]
StreamFn = Callable[[Sequence["ProbeItem"], Sequence[str]], Iterator[tuple[int, Verdict]]]
ScoreFn = Callable[[str, "ProbeItem"], float]


@dataclass(frozen=True)
class Judge:
    name: str
    version: str  # bump when the rubric or the logic changes; part of every cache key
    fn: BatchFn = field(repr=False)
    labels: Mapping[str, float] | None = None  # label -> score; None: taken from the probe when bound (llm)
    needs: frozenset[str] = frozenset()  # item meta keys it reads
    needs_reference: bool = False  # it compares with item.reference
    categories: frozenset[str] | None = None  # categories it can grade; None = any
    score_label: ScoreFn | None = field(default=None, repr=False)  # when a label's score depends on the item
    bind: Callable[[Probe], Judge] | None = field(default=None, repr=False)  # probe-specific judge (llm)
    stream_fn: StreamFn | None = field(default=None, repr=False)  # verdicts as they come (slow judges)

    def __call__(self, items: Sequence[ProbeItem], responses: Sequence[str], /) -> list[Verdict]:
        if len(items) != len(responses):
            raise ValueError(f"judge {self.name}: {len(items)} items but {len(responses)} responses")
        out = self.fn(items, responses)
        if len(out) != len(items):
            raise RuntimeError(f"judge {self.name} returned {len(out)} verdicts for {len(items)} responses")
        return out

    def stream(self, items: Sequence[ProbeItem], responses: Sequence[str]) -> Iterator[tuple[int, Verdict]]:
        """(index, verdict) as each is ready, so the caller can save each one at once (a kill loses none)."""
        if len(items) != len(responses):
            raise ValueError(f"judge {self.name}: {len(items)} items but {len(responses)} responses")
        if self.stream_fn is not None:
            yield from self.stream_fn(items, responses)
        else:
            yield from enumerate(self(items, responses))

    def for_probe(self, probe: Probe) -> Judge:
        """This judge as it grades `probe` (the llm judge takes the probe's rubric and labels)."""
        return self.bind(probe) if self.bind is not None else self

    def score_of(self, label: str, item: ProbeItem) -> float:
        """The score a verdict with `label` gets on `item` (judge-check scores human labels with it)."""
        if self.score_label is not None:
            return self.score_label(label, item)
        if self.labels is None or label not in self.labels:
            raise KeyError(f"judge {self.name}: unknown label {label!r}; labels: {sorted(self.labels or {})}")
        return float(self.labels[label])

    def passing(self) -> list[str]:
        """Labels that pass by default (an item-dependent judge documents its own rule)."""
        return [lab for lab, s in (self.labels or {}).items() if s >= PASS_THRESHOLD]

    def with_fields(self, **changes: Any) -> Judge:
        return replace(self, **changes)


def fits(probe: Probe, judge: Judge) -> list[str]:
    """Why `judge` cannot grade `probe` (empty when it can), each reason naming both."""
    both = f"judge '{judge.name}' cannot grade probe '{probe.name}'"
    why = []
    if probe.scoring != "generate":
        why.append(f"{both}: the probe is scored by log-likelihood ({probe.scoring}), no reply is generated")
        return why
    if judge.categories is not None and probe.category not in judge.categories:
        why.append(f"{both}: it grades {', '.join(sorted(judge.categories))}, the probe is {probe.category}")
    missing = sorted(judge.needs - probe.provides)
    if missing:
        why.append(f"{both}: it reads item meta {missing}, which the probe does not provide "
                   f"(it provides {sorted(probe.provides) or 'none'})")
    if judge.needs_reference and not probe.has_reference:
        why.append(f"{both}: it compares with a reference answer, and the probe's items have none")
    if judge.labels is None and judge.bind is None:
        why.append(f"{both}: the judge declares no labels")
    return why
