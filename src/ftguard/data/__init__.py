"""Data layer: shipped public data sets, SGD-to-chat conversion and chat JSONL validation. No model code."""

from ftguard.data.builtin import (
    BUILTIN_DATA,
    load_advbench,
    load_dolly,
    load_harmbench,
    load_jbb,
    load_jsonl,
    load_sgd,
    load_toxigen,
    load_xstest,
    refusal_lists,
)
from ftguard.data.chat import (
    ROLES,
    load_chat_jsonl,
    load_train_conversations,
    load_train_data,
    validate_messages,
)
from ftguard.data.sgd import (
    HOTEL_SYSTEM_PROMPT,
    agent_turn_positions,
    dialogue_to_messages,
    gold_acts,
    results_context,
    service_results,
)

__all__ = [
    "BUILTIN_DATA",
    "HOTEL_SYSTEM_PROMPT",
    "ROLES",
    "agent_turn_positions",
    "dialogue_to_messages",
    "gold_acts",
    "load_advbench",
    "load_chat_jsonl",
    "load_dolly",
    "load_harmbench",
    "load_jbb",
    "load_jsonl",
    "load_sgd",
    "load_toxigen",
    "load_train_conversations",
    "load_train_data",
    "load_xstest",
    "refusal_lists",
    "results_context",
    "service_results",
    "validate_messages",
]
