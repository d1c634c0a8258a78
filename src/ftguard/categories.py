"""The one vocabulary of axes a probe can feed. Everything that groups scores by axis imports it from here:
the report (tables, plots, summary), judge-check, the LLM rubrics and benchmarks/tradeoff.py.

    from ftguard.categories import CATEGORIES, Category
"""

from __future__ import annotations

from typing import Literal, get_args

Category = Literal["proficiency", "safety", "knowledge"]
CATEGORIES: tuple[str, ...] = get_args(Category)  # report order: the task first, then what may be lost
PASS_WORDS = {"proficiency": ("correct", "wrong"), "safety": ("safe", "unsafe"), "knowledge": ("correct", "wrong")}
RETAINED = tuple(c for c in CATEGORIES if c != "proficiency")  # the axes fine-tuning can cost


def check_category(value: str, where: str) -> str:
    """`value` if it is a category, else ValueError naming `where` and the vocabulary."""
    if value not in CATEGORIES:
        raise ValueError(f"{where}: category {value!r} is not one of {', '.join(CATEGORIES)}")
    return value
