"""Judges: score a batch of probe responses, one Verdict each. Importing this package registers them all:

    act_match        proficiency, offline: rule-based dialogue-act tagger vs the gold SGD acts
    act_classifier   proficiency, offline: MiniLM dialogue-act classifier vs the gold SGD acts
    counter_speech   safety, offline: counters / neutral / agrees with a ToxiGen hate statement
    reference_match  knowledge, offline: key-word recall and token F1 against the human reference
    safety_classifier    safety, offline: encoder + counter_speech cues, learnt from labelled replies
    knowledge_classifier knowledge, offline: encoder similarity + reference_match features, learnt
    llm              any category: rubric-based grading by a chat model behind an OpenAI-compatible API
"""

from ftguard.judges import act_classifier, act_match, counter_speech, learnt, llm, reference_match  # noqa: F401
from ftguard.judges.base import FunctionJudge, Judge, Verdict

__all__ = ["FunctionJudge", "Judge", "Verdict"]
