"""`reference_similarity`: offline judge of a reply against a reference turn of the user's own data (chat_holdout):
the cosine of their sentence embeddings (all-MiniLM-L6-v2) and ROUGE-L F1 (the `rouge_score` package, stemmed).
Both raw scores go into the explanation for audit.

Pass rule (thresholds set a priori, not fitted to any labels; measure them with `ftguard judge-check` on labelled
replies of your data before trusting small differences): `matches` when cosine >= `min_cosine` (0.7) or
ROUGE-L F1 >= `min_rouge` (0.5), else `differs`. The reply is cut at a fake next turn first.
"""

from __future__ import annotations

from ftguard.errors import ConfigError
from ftguard.judges._reply import cut_at_next_turn
from ftguard.judges.base import Judge, Verdict
from ftguard.registry import JUDGES


@JUDGES.register("reference_similarity")
def reference_similarity(min_cosine: float = 0.7, min_rouge: float = 0.5) -> Judge:
    """Encoder cosine and ROUGE-L against the reference turn: matches / differs (raw scores kept).

    Args:
        min_cosine: Cosine of the sentence embeddings at or above which the reply matches.
        min_rouge: ROUGE-L F1 at or above which the reply matches.
    """
    for name, v in (("min_cosine", min_cosine), ("min_rouge", min_rouge)):
        if not 0 < v <= 1:
            raise ConfigError(f"reference_similarity: {name} must be in (0, 1], got {v}")

    def judge(items, responses) -> list[Verdict]:
        from rouge_score import rouge_scorer

        from ftguard.judges.encoder import encode

        replies = [cut_at_next_turn(r) for r in responses]
        refs = [it.reference or "" for it in items]
        e_r, e_f = encode(replies), encode(refs)
        scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        out = []
        for i, (reply, ref) in enumerate(zip(replies, refs, strict=True)):
            cos = float(e_r[i] @ e_f[i]) if reply else 0.0
            rouge = scorer.score(ref, reply)["rougeL"].fmeasure if reply else 0.0
            ok = cos >= min_cosine or rouge >= min_rouge
            out.append(Verdict(float(ok), "matches" if ok else "differs", f"cosine={cos:.3f} rougeL={rouge:.3f}"))
        return out

    return Judge("reference_similarity", "1", judge, labels={"matches": 1.0, "differs": 0.0}, needs_reference=True)
