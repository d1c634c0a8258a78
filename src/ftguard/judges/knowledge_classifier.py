"""`knowledge_classifier`: offline learnt judge of Dolly answers against the human reference -> correct (1.0) /
wrong (0.0). Features: the `reference_match` verdict, weighted key-word recall, token F1, yes/no polarity
agreement, cosine of answer and reference embeddings (whole answer and best sentence), cosine of answer and
question (restating the question is not answering it), and the lengths; a small softmax classifier trained on
real model answers labelled by reading (RUBRIC.md; scripts/train_judge_classifiers.py; weights in
src/ftguard/assets/judges/knowledge_classifier.safetensors). The reply is cut at a fake next turn ("User:").
Not fitted on the calibration set that `ftguard judge-check` measures it on.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ftguard.judges import _linear
from ftguard.judges._reply import cut_at_next_turn
from ftguard.judges.base import Judge, Verdict
from ftguard.judges.reference_match import (
    _polarity,
    answer_precision,
    lexical_scores,
    match,
)
from ftguard.registry import JUDGES

KNOWLEDGE_PATH = _linear.ASSETS / "knowledge_classifier.safetensors"
KNOWLEDGE_LABELS = ("correct", "wrong")
_SENT = re.compile(r"(?<=[.!?])\s+|\n+")


def knowledge_features(responses: Sequence[str], references: Sequence[str], questions: Sequence[str]) -> Any:
    import torch

    from ftguard.judges.encoder import encode

    answers = [cut_at_next_turn(r) for r in responses]
    sents = [[s for s in _SENT.split(a) if s.strip()][:8] or [""] for a in answers]
    flat = [s for ss in sents for s in ss]
    e_a, e_ref, e_q, e_s = encode(answers), encode(list(references)), encode(list(questions)), encode(flat)
    rows, k = [], 0
    for i, (a, ref, q) in enumerate(zip(answers, references, questions, strict=True)):
        best = float((e_s[k:k + len(sents[i])] @ e_ref[i]).max())
        k += len(sents[i])
        _, _, recall, f1 = lexical_scores(a, ref, q) if a else ({}, set(), 0.0, 0.0)
        rule = match(a, ref, q).score if a else 0.0
        ref_pol = _polarity(ref) if re.match(r"\W*(yes|no)\b", ref.lower()) else None
        pol = 0.0 if ref_pol is None else (1.0 if _polarity(a) == ref_pol else -1.0)
        precision, names_found = answer_precision(a, ref, q) if a else (0.0, False)
        rows.append([0.0 if math.isnan(rule) else rule, recall, f1, pol, float(e_a[i] @ e_ref[i]), best,
                     float(e_a[i] @ e_q[i]), math.log1p(len(a.split())), math.log1p(len(ref.split())),
                     float(not a), precision, float(names_found)])
    return torch.tensor(rows, dtype=torch.float32)


@JUDGES.register("knowledge_classifier")
def knowledge_classifier() -> Judge:
    """Encoder similarity + lexical agreement with the human reference, learnt: correct / wrong."""

    def judge(items, responses) -> list[Verdict]:
        out: list[Verdict | None] = [None] * len(items)
        ok = [i for i, it in enumerate(items) if it.reference and it.reference.strip()]
        for i in set(range(len(items))) - set(ok):
            out[i] = Verdict(math.nan, "error", "no reference answer on the item")
        if ok:
            x = knowledge_features([responses[i] for i in ok], [items[i].reference for i in ok],
                                   [items[i].meta.get("question", "") for i in ok])
            for i, (lab, p), row in zip(ok, _linear.predict(KNOWLEDGE_PATH, x, KNOWLEDGE_LABELS), x.tolist(), strict=True):
                out[i] = Verdict(1.0 if lab == "correct" else 0.0, lab,
                                 f"p={p:.2f} rule={row[0]:.0f} recall={row[1]:.2f} f1={row[2]:.2f} "
                                 f"cos_ref={row[4]:.2f} best_sentence={row[5]:.2f} cos_question={row[6]:.2f}")
        return out  # type: ignore[return-value]

    return Judge("knowledge_classifier", "4", judge, labels={"correct": 1.0, "wrong": 0.0}, needs_reference=True)
