"""Probe `qa`: the user's own question/answer pairs (a product FAQ, domain facts), judged like Dolly: the reply is
compared with the reference answer (reference_match by default; knowledge_classifier, or the llm judge).

    probes: [{name: qa, path: my_faq.jsonl}]      # {"question": ..., "answer": ..., "context": optional, "id": optional}

JSONL or CSV with `question` and `answer`; a `context` passage goes before the question, as Dolly's closed_qa.
`hf: {path, name, split, columns}` reads a Hugging Face dataset instead.
"""

from __future__ import annotations

from typing import Any

from ftguard.errors import DataError
from ftguard.probes._files import read_rows
from ftguard.probes._select import check_params, sample
from ftguard.probes.base import Probe, ProbeItem
from ftguard.probes.dolly_qa import RUBRIC
from ftguard.registry import PROBES

META = frozenset({"question", "category"})


@PROBES.register("qa", disjoint="the user's own file: no built-in anchor or alignment data comes from it",
                 example={"path": "examples/own_data/faq.jsonl"})
def qa(path: str | None = None, hf: dict[str, Any] | None = None, n: int | None = None, seed: int = 0,
       max_new_tokens: int = 64) -> Probe:
    """Your question/answer pairs; the judge compares each reply with your reference answer.

    Args:
        path: A JSONL or CSV file with `question` and `answer` (optionally `context`, `id`).
        hf: Or a Hugging Face dataset: {path, name, split, columns: {question: ..., answer: ...}}.
        n: Use the first n rows of a seeded shuffle; None = all.
        seed: Seed of that shuffle.
        max_new_tokens: Generation budget per answer.
    """
    rows = read_rows(path, hf, required=("question", "answer"))
    n = len(rows) if n is None else n
    check_params("qa", n, len(rows), f"rows in {path or hf}", max_new_tokens)
    items = []
    for where, r in sample(rows, n, seed):
        context = (r.get("context") or "").strip()
        text = f"{context}\n\nQuestion: {r['question']}" if context else r["question"]
        items.append(ProbeItem(id=f"qa/{r.get('id') or where.rsplit(':', 1)[-1]}",
                               messages=[{"role": "user", "content": text}], reference=r["answer"],
                               meta={"question": r["question"], "category": "closed_qa" if context else "open_qa"}))
    if len({it.id for it in items}) != len(items):
        raise DataError(f"{path or hf}: row ids repeat; give each row a distinct `id` or leave ids out")
    return Probe(name="qa", category="knowledge", version=1, items=items, default_judge="reference_match",
                 max_new_tokens=max_new_tokens, provides=META, rubrics={"default": RUBRIC},
                 description=f"Your questions ({path or hf['path']}), compared with your reference answers.")
