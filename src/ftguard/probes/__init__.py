"""Probes: registered factories that return a Probe (items, category, scoring, default judge, rubrics).

Importing this package registers every built-in probe in `ftguard.registry.PROBES`; one file per probe,
named as registered.
"""

from ftguard.probes import (  # noqa: F401  (registration side effect)
    chat_holdout,
    dolly_qa,
    harmful_refusal,
    lm_eval,
    prompts,
    qa,
    sgd_next_turn,
    toxigen_counter,
    xstest,
)
from ftguard.probes.base import Probe, ProbeItem

__all__ = ["Probe", "ProbeItem"]
