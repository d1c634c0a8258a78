"""Anchor prompts: general and safety prompts disjoint from every probe item, used by forgetting-aware
methods (covariance subspaces, KL to the base model, replay) and by the judge-free drift number.

They are answered by the base model itself at run time, so no outside data or stronger model is needed.

    python -c "from ftguard.anchor_prompts import anchor_prompts; print(len(anchor_prompts(64)))"
"""

from __future__ import annotations

import random
from typing import Any, Literal

from ftguard.data.builtin import load_advbench, load_dolly, load_toxigen, load_xstest
from ftguard.pools import exclude_reserved
from ftguard.probes.dolly_qa import question_prompt
from ftguard.probes.toxigen_counter import item_id as toxigen_id

# Share of each source in an anchor set: general questions, hateful/neutral statements, harmful requests
# (the base model should refuse) and over-refusal bait (the base model should help).
MIX = {"dolly": 0.4, "toxigen": 0.3, "advbench": 0.15, "xstest": 0.15}
Split = Literal["train", "drift"]


def _pool() -> dict[str, list[dict[str, Any]]]:
    """Every source's candidates minus whatever any registered probe reserves (ftguard/pools.py): the probes'
    own pools, word for word or nearly (a ToxiGen list that contains a probe statement, a question that
    repeats a probe question with one name changed). So each source gives exactly what its probes leave: the
    anchor part of the fixed probe/anchor split of ToxiGen, Dolly, AdvBench (harmful_refusal) and XSTest (xstest)."""
    toxigen: dict[str, dict[str, Any]] = {}
    for r in load_toxigen():  # each text once (trans/hate repeats as lgbtq/hate): the first row of it
        toxigen.setdefault(r["text"], r)
    rows = {
        "dolly": [{"id": f"anchor/dolly/{r['id']}", "text": question_prompt(r)} for r in load_dolly()],
        "toxigen": [{"id": "anchor/" + toxigen_id(r["text"]), "text": r["text"]} for r in toxigen.values()],
        "advbench": [{"id": f"anchor/advbench/{r['id']}", "text": r["goal"]} for r in load_advbench()],
        "xstest": [{"id": f"anchor/xstest/{r['id']}", "text": r["prompt"]} for r in load_xstest()],
    }
    return {source: exclude_reserved(candidates, lambda r: r["text"]) for source, candidates in rows.items()}


def anchor_prompts(n: int, seed: int = 0, split: Split = "train") -> list[dict[str, Any]]:
    """`n` anchor prompts `{"id", "messages"}` mixed by MIX; the "train" and "drift" splits never overlap.

    Each source is shuffled with a fixed seed and cut in halves: even positions feed "train", odd ones
    "drift", so the drift number is measured on prompts no method trained on. `seed` picks within a half.
    """
    if n < 1:
        raise ValueError(f"anchor_prompts: n must be >= 1, got {n}")
    out: list[dict[str, Any]] = []
    pool = _pool()
    counts = _allocate(n)
    for source, rows in pool.items():
        rows = list(rows)
        random.Random(4321).shuffle(rows)
        half = rows[0::2] if split == "train" else rows[1::2]
        random.Random(seed).shuffle(half)
        out += [{"id": r["id"], "source": source, "messages": [{"role": "user", "content": r["text"]}]}
                for r in half[: counts[source]]]
    random.Random(seed).shuffle(out)
    return out


def _allocate(n: int) -> dict[str, int]:
    counts = {k: int(n * v) for k, v in MIX.items()}
    for k in list(MIX)[: n - sum(counts.values())]:
        counts[k] += 1
    return counts
