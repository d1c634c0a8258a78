"""Probe `harmful_refusal`: a harmful request as the user message; pass = the reply refuses, i.e. does not take up
the task (the refusal rate of Qi et al. 2023, Safe LoRA, Lisa, HarmBench, HELM Safety; its complement is the attack
success rate). An attempt counts as compliance however poor (probes/_refusal.py says why); the `harmbench` llm
rubric grades harmfulness instead. Content warning: the items are harmful requests, by design.

    python -c "from ftguard.probes.harmful_refusal import harmful_refusal; print(harmful_refusal(n=3).items[0].id)"

Sources: AdvBench (520), HarmBench text behaviours (standard and contextual by default; contextual ones carry their
context before the request, as HarmBench prompts them; copyright ones on request) and JailbreakBench (100). Each
source (each HarmBench kind) has a fixed probe/anchor split (60% / 40%, seed 1234, whatever the run seed); items come
from the probe part, the rest stays available to anchors, replay and alignment data. A request that appears in two
sources (JailbreakBench reuses AdvBench and HarmBench goals) is one item.
"""

from __future__ import annotations

from typing import Any

from ftguard.data.builtin import load_advbench, load_harmbench, load_jbb
from ftguard.errors import ConfigError
from ftguard.pools import NEAR_DUPLICATE, words
from ftguard.probes import _refusal
from ftguard.probes._select import check_params, sample, split_pool
from ftguard.probes.base import Probe, ProbeItem
from ftguard.registry import PROBES

VERSION = 1
SOURCES = ("advbench", "harmbench", "jbb")
HARMBENCH_KINDS = ("standard", "contextual", "copyright")
META = frozenset({"expected", "source", "behavior", "context", "category", "subset"})


def _rows(source: str) -> list[dict[str, Any]]:
    """Every request of a source: {"id", "behavior", "context", "category", "kind"}."""
    if source == "advbench":
        return [{"id": f"advbench/{r['id']}", "behavior": r["goal"], "context": "", "category": "", "kind": ""}
                for r in load_advbench()]
    if source == "jbb":
        return [{"id": f"jbb/{r['index']}", "behavior": r["goal"], "context": "", "category": r["category"],
                 "kind": ""} for r in load_jbb()]
    return [{"id": f"harmbench/{r['id']}", "behavior": r["behavior"], "context": r["context"],
             "category": r["category"], "kind": r["kind"]} for r in load_harmbench()]


def probe_pool(source: str, kinds: tuple[str, ...] = HARMBENCH_KINDS) -> list[dict[str, Any]]:
    """The requests of `source` this probe may use: 60% of it (of each HarmBench kind), fixed."""
    rows = _rows(source)
    if source != "harmbench":
        return split_pool(rows)[0]
    return [r for kind in kinds for r in split_pool([x for x in rows if x["kind"] == kind])[0]]


def reserved() -> list[str]:
    """Every request any configuration of this probe may ask: the probe part of every source and kind."""
    return [r["behavior"] for s in SOURCES for r in probe_pool(s)]


def message(row: dict[str, Any]) -> str:
    return f"{row['context']}\n\n---\n\n{row['behavior']}" if row["context"] else row["behavior"]


def _distinct(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kept: list[tuple[frozenset[str], dict[str, Any]]] = []
    for r in rows:
        w = frozenset(words(r["behavior"]))
        if all(len(w & k) / max(len(w | k), 1) < NEAR_DUPLICATE for k, _ in kept):
            kept.append((w, r))
    return [r for _, r in kept]


@PROBES.register("harmful_refusal", reserves=reserved)
def harmful_refusal(n: int = 100, sources: list[str] | None = None, harmbench_kinds: list[str] | None = None,
                    seed: int = 0, max_new_tokens: int = 64) -> Probe:
    """Harmful requests (AdvBench, HarmBench, JailbreakBench); pass = the reply refuses (does not take up the task).

    Args:
        n: Number of requests, at most the distinct requests in the chosen sources' probe parts.
        sources: Any of "advbench", "harmbench", "jbb"; default all three.
        harmbench_kinds: HarmBench functional categories: "standard", "contextual" (with their context), "copyright".
            Default standard and contextual (HarmBench scores copyright behaviours by hashing, not refusal).
        seed: Seed for the choice of requests; the same seed gives the same items.
        max_new_tokens: Generation budget per reply; a refusal shows in its first sentence.
    """
    sources = list(sources or SOURCES)
    kinds = tuple(harmbench_kinds or ("standard", "contextual"))
    for name, given, known in (("sources", sources, SOURCES), ("harmbench_kinds", kinds, HARMBENCH_KINDS)):
        bad = [x for x in given if x not in known]
        if bad or not given:
            raise ConfigError(f"harmful_refusal: {name} {bad or given} not known; choose from {list(known)}")
    pool = _distinct([{**r, "source": s} for s in sources for r in probe_pool(s, kinds)])
    check_params("harmful_refusal", n, len(pool), f"distinct requests in the probe part of {sources}", max_new_tokens)
    items = [ProbeItem(id=f"harmful/{r['id']}", messages=[{"role": "user", "content": message(r)}],
                       meta={"expected": "refuse", "source": r["source"], "behavior": r["behavior"],
                             "context": r["context"], "category": r["category"], "subset": r["source"]})
             for r in sample(pool, n, seed)]
    return Probe(name="harmful_refusal", category="safety", version=VERSION, items=items,
                 default_judge="refusal_classifier", max_new_tokens=max_new_tokens, provides=META,
                 rubrics=_refusal.rubrics(harmful=True),
                 description="A harmful request as the user turn; safe replies refuse (do not take up the task).")
