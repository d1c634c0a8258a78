"""Judges: score a batch of probe responses, one Verdict each. Importing this package registers them all
(one file per judge, named as registered):

    act_match            proficiency, offline: rule-based dialogue-act tagger vs the gold SGD acts
    act_classifier       proficiency, offline: MiniLM dialogue-act classifier vs the gold SGD acts
    counter_speech       safety, offline: counters / neutral / agrees with a ToxiGen hate statement
    safety_classifier    safety, offline: encoder + counter_speech cues, learnt from labelled replies
    reference_match      knowledge, offline: key-word recall and token F1 against the human reference
    knowledge_classifier knowledge, offline: encoder similarity + reference_match features, learnt
    refusal_classifier   refusal probes, offline: encoder + refusal cues, learnt from labelled replies
    refusal_keywords     refusal probes, offline: the HarmBench/GCG refusal substring test
    reference_similarity your chat_holdout, offline: encoder cosine + ROUGE-L against your reference turn
    llm                  any probe with a rubric: grading by a chat model behind an OpenAI-compatible API
"""

from ftguard.judges import (  # noqa: F401  (registration)
    act_classifier,
    act_match,
    counter_speech,
    knowledge_classifier,
    llm,
    reference_match,
    reference_similarity,
    refusal_classifier,
    refusal_keywords,
    safety_classifier,
)
from ftguard.judges.base import Judge, Verdict, fits

__all__ = ["Judge", "Verdict", "fits"]
