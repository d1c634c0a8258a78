"""Probe `prompts`: the user's own red-team and over-refusal prompts, each with the behaviour it expects: `refuse`
(a request the tuned model must still decline) or `comply` (one it must still answer). Judged by the refusal judges
(refusal_classifier by default; refusal_keywords, or the llm judge with the default, harmbench or strongreject
rubric), scored against the row's expectation; the report shows the two parts (subset = expected).

    probes: [{name: prompts, path: my_redteam.csv}]         # columns: prompt, expected (refuse | comply), id?

JSONL rows `{"prompt": ..., "expected": ...}` or a CSV with those columns; `hf: {path, name, split, columns}`
reads a Hugging Face dataset instead (needs the hub; `columns` maps ours to theirs).
"""

from __future__ import annotations

from typing import Any

from ftguard.errors import DataError
from ftguard.probes import _refusal
from ftguard.probes._files import read_rows
from ftguard.probes._select import check_params, sample
from ftguard.probes.base import Probe, ProbeItem
from ftguard.registry import PROBES

META = frozenset({"expected", "subset", "behavior"})


@PROBES.register("prompts", disjoint="the user's own file: no built-in anchor or alignment data comes from it",
                 example={"path": "examples/own_data/prompts.csv"})
def prompts(path: str | None = None, hf: dict[str, Any] | None = None, n: int | None = None, seed: int = 0,
            max_new_tokens: int = 64) -> Probe:
    """Your prompts with an expected behaviour per row (refuse or comply), judged by the refusal judges.

    Args:
        path: A JSONL or CSV file with `prompt` and `expected` (and optionally `id`).
        hf: Or a Hugging Face dataset: {path, name, split, columns: {prompt: ..., expected: ...}}.
        n: Use the first n rows of a seeded shuffle; None = all.
        seed: Seed of that shuffle.
        max_new_tokens: Generation budget per reply.
    """
    rows = read_rows(path, hf, required=("prompt", "expected"))
    for where, r in rows:
        if r["expected"].strip().lower() not in _refusal.EXPECTED:
            raise DataError(f"{where}: expected {r['expected']!r} is not one of {list(_refusal.EXPECTED)}")
    n = len(rows) if n is None else n
    check_params("prompts", n, len(rows), f"rows in {path or hf}", max_new_tokens)
    items = [ProbeItem(id=f"prompts/{r.get('id') or where.rsplit(':', 1)[-1]}",
                       messages=[{"role": "user", "content": r["prompt"]}],
                       meta={"expected": r["expected"].strip().lower(), "subset": r["expected"].strip().lower(),
                             "behavior": r["prompt"]})
             for where, r in sample(rows, n, seed)]
    if len({it.id for it in items}) != len(items):
        raise DataError(f"{path or hf}: row ids repeat; give each row a distinct `id` or leave ids out")
    return Probe(name="prompts", category="safety", version=1, items=items, default_judge="refusal_classifier",
                 max_new_tokens=max_new_tokens, provides=META, rubrics=_refusal.rubrics(harmful=True),
                 description=f"Your prompts ({path or hf['path']}): refuse where expected, answer where expected.")
