"""The one record of which items each registered probe reserves, and the check that keeps every other use
of the shipped data (anchors, replay, drift, alignment) away from them.

A probe declares at registration the texts it may ever draw items from, whatever its parameters:

    @PROBES.register("toxigen_counter", reserves=lambda: [r["text"] for r in probe_pool()])

`reserved()` collects them from every registered probe (third-party ones included), and `leak(text)` names
the probe whose reserved text `text` contains, word for word (case, punctuation and spacing ignored), or
nearly so (word-set Jaccard >= NEAR_DUPLICATE, which catches the same request re-worded across AdvBench,
HarmBench and JailbreakBench). Probes whose items come from the user's own files or from data sets no
other part of ftguard draws on declare `reserves=None` with a reason (`disjoint="..."`).

    python -c "from ftguard.pools import reserved; print({k: len(v) for k, v in reserved().items()})"
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import TypeVar

T = TypeVar("T")
NEAR_DUPLICATE = 0.8  # word-set Jaccard at or above which two prompts count as the same request
_WORD = re.compile(r"\w+")
_KEY = 3  # reserved texts are indexed by their first three words


def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall((text or "").lower()))


def reserved() -> dict[str, list[str]]:
    """probe name -> the texts it reserves, for every registered probe that draws on shared data."""
    from ftguard.registry import PROBES, load_plugins

    load_plugins()
    out = {}
    for name in PROBES.names():
        fn = PROBES.info(name).get("reserves")
        if fn is not None:
            out[name] = list(fn())
    return out


def undeclared() -> list[str]:
    """Registered probes that declare neither `reserves` nor a `disjoint` reason (a contract violation)."""
    from ftguard.registry import PROBES, load_plugins

    load_plugins()
    return [n for n in PROBES.names() if PROBES.info(n).get("reserves") is None and not PROBES.info(n).get("disjoint")]


class _Index:
    def __init__(self, texts: dict[str, list[str]]):
        self.by_key: dict[tuple[str, ...], list[tuple[tuple[str, ...], str]]] = defaultdict(list)
        self.sets: list[tuple[frozenset[str], str]] = []
        postings: dict[str, list[int]] = defaultdict(list)
        for probe, items in texts.items():
            for text in items:
                w = words(text)
                if not w:
                    continue
                self.by_key[w[:_KEY]].append((w, probe))
                self.sets.append((frozenset(w), probe))
                for tok in set(w):
                    postings[tok].append(len(self.sets) - 1)
        self.postings = dict(postings)

    def find(self, text: str) -> str | None:
        w = words(text)
        for i in range(len(w)):
            for j in range(1, _KEY + 1):  # texts shorter than the key are indexed by all their words
                for seq, probe in self.by_key.get(w[i:i + j], ()):
                    if len(seq) >= j and (j == _KEY or len(seq) == j) and w[i:i + len(seq)] == seq:
                        return probe
        mine = frozenset(w)
        candidates: set[int] = set()
        for tok in mine:  # texts sharing a rare word are the only ones that can be near duplicates
            ids = self.postings.get(tok, ())
            if len(ids) <= 200:
                candidates.update(ids)
        for k in candidates:
            other, probe = self.sets[k]
            if len(mine & other) / len(mine | other) >= NEAR_DUPLICATE:
                return probe
        return None


@lru_cache(maxsize=4)
def _index(names: tuple[str, ...]) -> _Index:
    return _Index(reserved())


def _current() -> _Index:
    from ftguard.registry import PROBES, load_plugins

    load_plugins()
    return _index(tuple(PROBES.names()))


def leak(text: str) -> str | None:
    """The probe whose reserved text `text` contains (or nearly repeats), else None."""
    return _current().find(text)


def exclude_reserved(rows: Iterable[T], text: Callable[[T], str]) -> list[T]:
    """`rows` without those whose `text(row)` leaks any probe's reserved items."""
    index = _current()
    return [r for r in rows if index.find(text(r)) is None]


def leaks(texts: Sequence[str]) -> list[tuple[int, str]]:
    """(position, probe) of every text that leaks a reserved item; the disjointness tests assert it is empty."""
    index = _current()
    return [(i, p) for i, t in enumerate(texts) if (p := index.find(t)) is not None]


def clear_cache() -> None:
    """Forget the index (a test that registers a probe and removes it again calls this)."""
    _index.cache_clear()


__all__ = ["NEAR_DUPLICATE", "exclude_reserved", "leak", "leaks", "reserved", "undeclared", "words"]
