"""The run-directory contract shared by the pipeline (writer) and the report (reader). No torch here.

RUN_DIR/
  config.yaml        the resolved RunConfig
  manifest.json      versions, git SHA, seeds, timings, per-method training info (see pipeline.py)
  results.jsonl      one row per (model, probe, item): see ResultRow
  summary.json       written by ftguard.report from results.jsonl + manifest.json
  report.md, report.html, figures/*.png
  models/<label>/    what each method produced (adapter or weights) and its training log
  cache/             content-addressed generations and verdicts (resume and re-run reuse them)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypedDict

RESULTS_FILE = "results.jsonl"
SUMMARY_FILE = "summary.json"
MANIFEST_FILE = "manifest.json"
CONFIG_FILE = "config.yaml"


class VerdictDict(TypedDict):
    score: float | None  # None when the judge failed on this item
    label: str
    explanation: str


class ResultRow(TypedDict):
    model: str  # "base" or a method label ("full", "lora", ...)
    probe: str  # probe name, e.g. "sgd_next_turn"
    category: str  # "proficiency" | "safety" | "knowledge"
    item_id: str
    prompt: list[dict[str, str]]  # chat messages given to the model
    reference: str | None
    response: str
    judge: str  # primary judge name
    score: float | None  # primary verdict: 1.0 pass, 0.0 fail, None = judge error (excluded, counted)
    label: str
    explanation: str
    verdicts: dict[str, VerdictDict]  # every judge that ran, primary included, keyed by judge name
    loglik: float | None  # mean per-token log-likelihood of the reference answer (knowledge probes), else None
    subset: str | None  # the item's part of its probe (xstest: "safe" / "unsafe"; harmful_refusal: the source)


def clean_score(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)


def read_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; DataError with `file:line:` on bad JSON or a non-object."""
    from ftguard.errors import DataError

    with Path(path).open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: invalid JSON: {e.msg} (column {e.colno})") from None
            except RecursionError:
                raise DataError(f"{path}:{lineno}: the JSON is nested too deeply") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def write_json(path: Path, obj: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(path)


def write_text(path: Path, text: str) -> None:
    """Write `text` atomically (a kill leaves the old file or the new one, never half of one)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
