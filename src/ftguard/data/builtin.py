"""Loaders for the public data sets shipped in `ftguard/assets/data` (see its README for sources and licences).

    python -c "from ftguard.data import load_sgd; print(len(load_sgd('dev')))"   # 56 dialogues
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

import ftguard
from ftguard.errors import DataError
from ftguard.results import read_jsonl

BUILTIN_DATA = Path(ftguard.__file__).parent / "assets" / "data"
SGD_SPLITS = ("train", "dev")


def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Read a JSONL file of objects; blank lines are skipped.

    Raises:
        DataError: the file is missing or a line is not a JSON object (`file:line:` prefix).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    return list(_read_jsonl(str(path)))


@lru_cache(maxsize=16)
def _read_jsonl(path: str) -> tuple[dict[str, Any], ...]:
    # Cached: probes and anchor pools re-read the same shipped files. Callers get fresh copies below.
    return tuple(row for _, row in read_jsonl(Path(path)))


def _copy(rows: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [json.loads(json.dumps(r)) for r in rows]


def load_sgd(split: str) -> list[dict[str, Any]]:
    """SGD single-service hotel dialogues of one official split ("train": 457, "dev": 56)."""
    if split not in SGD_SPLITS:
        raise DataError(f"Unknown SGD split {split!r}; use one of {', '.join(SGD_SPLITS)} (test is not shipped)")
    return _copy(_read_jsonl(str(BUILTIN_DATA / "sgd_hotels" / f"{split}.jsonl")))


def load_toxigen() -> list[dict[str, Any]]:
    """ToxiGen seed statements: {"text", "group", "label" ("hate" or "neutral"), ...}."""
    return _copy(_read_jsonl(str(BUILTIN_DATA / "toxigen" / "statements.jsonl")))


def load_dolly() -> list[dict[str, Any]]:
    """Dolly QA records: {"id", "instruction", "context", "response", "category"}."""
    return _copy(_read_jsonl(str(BUILTIN_DATA / "dolly" / "records.jsonl")))


def load_advbench() -> list[dict[str, Any]]:
    """AdvBench harmful behaviours: {"id", "goal", "target"}."""
    return _copy(_read_jsonl(str(BUILTIN_DATA / "advbench" / "harmful_behaviors.jsonl")))


def load_xstest() -> list[dict[str, Any]]:
    """XSTest prompts: {"id", "prompt", "type", "label" ("safe" or "unsafe"), "focus", "note"}."""
    return _copy(_read_jsonl(str(BUILTIN_DATA / "xstest" / "xstest_prompts.jsonl")))


def load_harmbench() -> list[dict[str, Any]]:
    """HarmBench text behaviours: {"id", "behavior", "kind" (standard/contextual/copyright), "category",
    "context" ("" unless contextual), "tags"}, in file order."""
    import csv

    path = BUILTIN_DATA / "harmbench" / "harmbench_behaviors_text_all.csv"
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    need = ("Behavior", "FunctionalCategory", "SemanticCategory", "ContextString", "BehaviorID")
    out = []
    for lineno, r in enumerate(rows, 2):
        missing = [k for k in need if r.get(k) is None]
        if missing or not r["Behavior"].strip():
            raise DataError(f"{path}:{lineno}: a HarmBench row needs {list(need)} and a behaviour; missing {missing}")
        out.append({"id": r["BehaviorID"], "behavior": r["Behavior"], "kind": r["FunctionalCategory"],
                    "category": r["SemanticCategory"], "context": r["ContextString"] or "", "tags": r.get("Tags", "")})
    return out


def load_jbb() -> list[dict[str, Any]]:
    """JailbreakBench harmful behaviours: {"index", "goal", "behavior", "category"}."""
    return _copy(_read_jsonl(str(BUILTIN_DATA / "jailbreakbench" / "jbb_harmful_behaviors.jsonl")))


def refusal_lists() -> dict[str, list[str]]:
    """The refusal substring lists of GCG, HarmBench and garak, by "<path>:<line_start>" (refusal_lists/README.md)."""
    entries = json.loads((BUILTIN_DATA / "refusal_lists" / "refusal_lists.json").read_text(encoding="utf-8"))
    return {f"{e['path']}:{e['line_start']}": list(e["items"]) for e in entries}
