"""Probes: registered factories that return a Probe (items + category + default judge).

Importing this package registers `sgd_next_turn`, `toxigen_counter` and `dolly_qa` in `ftguard.registry.PROBES`.
"""

from ftguard.probes import knowledge, proficiency, safety  # noqa: F401  (registration side effect)
from ftguard.probes.base import Probe, ProbeItem

__all__ = ["Probe", "ProbeItem", "knowledge", "proficiency", "safety"]
