"""Knowledge probe: Dolly open_qa / closed_qa questions, compared with the human reference answer.

    python -c "from ftguard.probes.dolly_qa import dolly_qa; print(dolly_qa(n=3).items[0])"
"""

from __future__ import annotations

from typing import Any

from ftguard.data.builtin import load_dolly
from ftguard.probes._select import check_params, sample, split_pool
from ftguard.probes.base import Probe, ProbeItem
from ftguard.registry import PROBES
from ftguard.rubrics import Rubric, last_user

VERSION = 1
QA_CATEGORIES = ("open_qa", "closed_qa")
MAX_CONTEXT_CHARS = 1500
SHORT_ANSWER_CHARS = 400  # a 64-token reply can match a reference of about this length


def probe_pool() -> list[dict[str, Any]]:
    """The records this probe may use: 60% of open_qa + closed_qa, fixed (seed 1234) whatever the run seed."""
    return split_pool([r for r in load_dolly() if r["category"] in QA_CATEGORIES])[0]


def anchor_pool() -> list[dict[str, Any]]:
    """Records reserved for anchor/replay data: the other 40% of open_qa + closed_qa plus all general_qa.

    Records whose question also appears in the probe pool are left out, so anchors never leak probe answers.
    """
    records = load_dolly()
    rest = split_pool([r for r in records if r["category"] in QA_CATEGORIES])[1]
    asked = {_norm(r["instruction"]) for r in probe_pool()}
    general = [r for r in records if r["category"] == "general_qa"]
    return [r for r in rest + general if _norm(r["instruction"]) not in asked]


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def truncate_context(context: str, max_chars: int = MAX_CONTEXT_CHARS) -> str:
    """Cut a long passage at the last sentence end within `max_chars` (at a word if there is none)."""
    if len(context) <= max_chars:
        return context
    head = context[:max_chars]
    end = max(head.rfind(p) for p in (". ", "! ", "? ", ".\n"))
    if end > max_chars // 2:
        return head[: end + 1]
    return head.rsplit(" ", 1)[0] + " ..."


def question_prompt(record: dict[str, Any], max_context_chars: int = MAX_CONTEXT_CHARS) -> str:
    """The user message: the question, preceded by its (possibly truncated) passage for closed_qa."""
    if record["category"] == "closed_qa" and record["context"].strip():
        return f"{truncate_context(record['context'].strip(), max_context_chars)}\n\nQuestion: {record['instruction']}"
    return record["instruction"]


RUBRIC = Rubric("default", "1", {"correct": 1.0, "wrong": 0.0}, (
    "You grade an answer to a question against a reference answer written by a person. "
    'Labels: "correct" = the answer states the key fact(s) of the reference and does not contradict it '
    '(extra correct detail and different wording are fine); "wrong" = it misses the key fact, contradicts '
    "the reference, refuses, or does not answer."),
    blocks=lambda it: [("Question", "question", last_user(it)), ("Reference answer", "reference", it.reference or "")])
META = frozenset({"category", "dolly_id", "question"})


@PROBES.register("dolly_qa", reserves=lambda: [r["instruction"] for r in probe_pool()])
def dolly_qa(n: int = 100, seed: int = 0, max_new_tokens: int = 64, max_context_chars: int = MAX_CONTEXT_CHARS) -> Probe:
    """Dolly open_qa / closed_qa questions (closed_qa with its passage); the judge compares with the reference.

    Records with a reference of at most 400 characters come first, in seeded order, so a short reply can
    match; longer ones are used only when `n` exceeds the short ones.

    Args:
        n: Number of questions, at most `len(probe_pool())`.
        seed: Seed for the choice of questions; the same seed gives the same items.
        max_new_tokens: Generation budget per answer.
        max_context_chars: closed_qa passages are cut at a sentence end within this many characters.
    """
    pool = probe_pool()
    check_params("dolly_qa", n, len(pool), "open_qa/closed_qa records in the probe pool", max_new_tokens)
    short = [r for r in pool if len(r["response"]) <= SHORT_ANSWER_CHARS]
    long = [r for r in pool if len(r["response"]) > SHORT_ANSWER_CHARS]
    chosen = sample(short, len(short), seed) + sample(long, len(long), seed)
    items = [
        ProbeItem(
            id=f"dolly/{r['id']}",
            messages=[{"role": "user", "content": question_prompt(r, max_context_chars)}],
            reference=r["response"],
            meta={"category": r["category"], "dolly_id": r["id"], "question": r["instruction"]},
        )
        for r in chosen[:n]
    ]
    return Probe(
        name="dolly_qa",
        category="knowledge",
        version=VERSION,
        items=items,
        default_judge="reference_match",
        max_new_tokens=max_new_tokens,
        description="Dolly open/closed QA questions; the reply is compared with the human reference answer.",
        reference_loglik=True,
        provides=META,
        rubrics={"default": RUBRIC},
    )
