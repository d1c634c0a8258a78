"""Statistics for the report: per-model scores, paired deltas vs base, McNemar tests, flips, judge agreement.

    rows, manifest = load_results(run_dir), load_manifest(run_dir)
    summary = summarize(rows, manifest)          # what build_report writes to RUN_DIR/summary.json

Scores are fractions in [0, 1]. Every CI is a 95% percentile bootstrap over items from a fresh
`numpy.random.default_rng(0)` per model or method, so adding a method never moves another model's numbers.
Judge errors (score None) are left out and counted; paired statistics use the items both models scored.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from ftguard.errors import DataError
from ftguard.results import MANIFEST_FILE, RESULTS_FILE, clean_score, read_jsonl

BASE = "base"
PASS_THRESHOLD = 0.5  # scores are 1.0 / 0.0; flips and McNemar count >= 0.5 as a pass (judges/base.py)
REQUIRED_KEYS = ("model", "probe", "category", "item_id", "score")

Items = dict[str, dict[str, Any]]  # item_id -> ResultRow, in results.jsonl order
Index = dict[tuple[str, str], Items]  # (model, probe) -> items


def load_results(run_dir: Path) -> list[dict[str, Any]]:
    """Read RUN_DIR/results.jsonl, checking each line is a ResultRow; raises DataError with `file:line:`."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.exists():
        raise DataError(f"{path} not found: run `ftguard run` or `ftguard eval` first, or pass another run dir")
    rows = []
    for lineno, row in read_jsonl(path):
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise DataError(f"{path}:{lineno}: missing keys {missing}; see ResultRow in ftguard/results.py")
        rows.append(row)
    if not rows:
        raise DataError(f"{path} has no rows: nothing to report")
    return rows


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """Read RUN_DIR/manifest.json; an absent manifest gives {} (the report then lacks run info)."""
    path = Path(run_dir) / MANIFEST_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}: not valid JSON ({e.msg})") from None


def report_setting(manifest: dict[str, Any], key: str, default: int) -> int:
    """`manifest["config"]["report"][key]`, or `default` when the manifest lacks it."""
    value = ((manifest.get("config") or {}).get("report") or {}).get(key)
    return default if value is None else int(value)


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of b vs c discordant pairs with p = 1/2.

    Args:
        b: Pairs that passed before and failed after.
        c: Pairs that failed before and passed after.
    """
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)  # exact integer arithmetic, so large n does not underflow


def cohen_kappa(a: Sequence[Any], b: Sequence[Any]) -> float | None:
    """Cohen's kappa of two label sequences (booleans or class names); None when both raters used one same
    label (chance agreement 1: undefined)."""
    a, b = list(a), list(b)
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    expected = sum((a.count(c) / n) * (b.count(c) / n) for c in set(a) | set(b))
    if math.isclose(expected, 1.0):
        return None
    return (observed - expected) / (1 - expected)


def bootstrap_means(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> np.ndarray:
    """Means of `n_boot` resamples of `values` with replacement; shape (n_boot,)."""
    idx = rng.integers(0, len(values), size=(n_boot, len(values)))  # (B, n)
    return values[idx].mean(axis=1)


def percentile_ci(draws: np.ndarray | None) -> list[float] | None:
    """The 95% percentile interval of bootstrap draws."""
    return None if draws is None else [float(x) for x in np.percentile(draws, [2.5, 97.5])]


def index_rows(rows: Sequence[dict[str, Any]]) -> Index:
    """Group rows by (model, probe), keyed by item id; a repeated item keeps its last row."""
    index: Index = {}
    for row in rows:
        index.setdefault((row["model"], row["probe"]), {})[str(row["item_id"])] = row
    return index


def score_stats(items: Items, rng: np.random.Generator, n_boot: int) -> tuple[dict[str, Any], np.ndarray | None]:
    """Mean score with its CI, n scored and n judge errors for one model on one probe."""
    scores = [clean_score(r["score"]) for r in items.values()]
    values = np.array([s for s in scores if s is not None], dtype=float)
    n_errors = len(scores) - len(values)
    # worst case: every judge error counted as a failure (a judge that fails more on one model's replies
    # must not flatter it by leaving them out)
    worst = float(values.sum() / len(scores)) if scores else None
    stats = {"mean": None, "n": len(values), "n_errors": n_errors, "ci": None, "worst_mean": worst}
    if not len(values):
        return stats, None
    draws = bootstrap_means(values, rng, n_boot)
    return {**stats, "mean": float(values.mean()), "ci": percentile_ci(draws)}, draws


def paired_stats(
    base: Items, tuned: Items, rng: np.random.Generator, n_boot: int, field: str = "score"
) -> tuple[dict[str, Any], np.ndarray | None]:
    """Paired change tuned - base over the items both scored: delta, CI, McNemar p and flips.

    Args:
        field: "score" (binary verdicts: flips and McNemar are added) or "loglik".
    """
    def value(row: dict[str, Any]) -> float | None:
        return clean_score(row.get(field))

    ids = [i for i in base if i in tuned and value(base[i]) is not None and value(tuned[i]) is not None]
    stats: dict[str, Any] = {"n_paired": len(ids), "n_missing": len(base.keys() - tuned.keys()),
                             "base_mean": None, "tuned_mean": None, "delta": None, "ci": None}
    if field == "score":
        stats.update(mcnemar_p=None, pass_to_fail=0, fail_to_pass=0, pass_to_fail_ids=[], fail_to_pass_ids=[])
        stats.update(worst_case(base, tuned, np.random.default_rng(1), n_boot))
    if not ids:
        return stats, None
    b = np.array([value(base[i]) for i in ids])
    t = np.array([value(tuned[i]) for i in ids])
    draws = bootstrap_means(t - b, rng, n_boot)  # resampling differences = resampling shared item ids
    stats.update(base_mean=float(b.mean()), tuned_mean=float(t.mean()), delta=float((t - b).mean()),
                 ci=percentile_ci(draws))
    if field == "score":
        passed_b, passed_t = b >= PASS_THRESHOLD, t >= PASS_THRESHOLD
        p2f = [i for i, pb, pt in zip(ids, passed_b, passed_t) if pb and not pt]
        f2p = [i for i, pb, pt in zip(ids, passed_b, passed_t) if pt and not pb]
        stats.update(mcnemar_p=mcnemar_exact_p(len(p2f), len(f2p)), pass_to_fail=len(p2f),
                     fail_to_pass=len(f2p), pass_to_fail_ids=p2f, fail_to_pass_ids=f2p)
    return stats, draws


def worst_case(base: Items, tuned: Items, rng: np.random.Generator, n_boot: int) -> dict[str, Any]:
    """The paired change with every judge error resolved against the tuned model (its errors count as
    failures, the base model's as passes), over all items both have: the bound a gate decides on."""
    shared = [i for i in base if i in tuned]
    b = [clean_score(base[i].get("score")) for i in shared]
    t = [clean_score(tuned[i].get("score")) for i in shared]
    n_errors = sum(x is None for x in b) + sum(x is None for x in t)
    if not shared or not n_errors:  # no error: the worst case is the point estimate and its CI
        return {"n_errors": n_errors, "worst_delta": None, "worst_ci": None}
    diff = np.array([(0.0 if y is None else y) - (1.0 if x is None else x) for x, y in zip(b, t, strict=True)])
    draws = bootstrap_means(diff, rng, n_boot)
    return {"n_errors": n_errors, "worst_delta": float(diff.mean()), "worst_ci": percentile_ci(draws),
            "_worst_draws": draws}


def worst_bound(stats: dict[str, Any]) -> tuple[float | None, list[float] | None]:
    """(worst-case delta, its CI): the point estimate and CI when no judge failed."""
    if stats.get("n_errors"):
        return stats.get("worst_delta"), stats.get("worst_ci")
    return stats.get("delta"), stats.get("ci")


def combine(parts: list[tuple[dict[str, Any], np.ndarray | None]], mean_key: str, sum_keys: Sequence[str]):
    """Average several probes' statistics into one category number; the CI comes from the averaged draws."""
    used = [(s, d) for s, d in parts if d is not None]
    out: dict[str, Any] = {k: sum(s.get(k, 0) for s, _ in parts) for k in sum_keys}
    if not used:
        return {**out, mean_key: None, "ci": None}, None
    draws = np.mean([d for _, d in used], axis=0)
    return {**out, mean_key: float(np.mean([s[mean_key] for s, _ in used])), "ci": percentile_ci(draws)}, draws


def judge_agreement(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per probe, for each pair of judges that both scored a row: n, pass/fail agreement and Cohen's kappa."""
    pairs: dict[str, dict[tuple[str, str], list[tuple[bool, bool]]]] = {}
    for row in rows:
        verdicts = row.get("verdicts") or {}
        primary = row.get("judge")
        names = ([primary] if primary in verdicts else []) + sorted(j for j in verdicts if j != primary)
        for j1, j2 in combinations(names, 2):
            s1, s2 = clean_score(verdicts[j1].get("score")), clean_score(verdicts[j2].get("score"))
            bucket = pairs.setdefault(row["probe"], {}).setdefault((j1, j2), [])
            if s1 is not None and s2 is not None:
                bucket.append((s1 >= PASS_THRESHOLD, s2 >= PASS_THRESHOLD))
    out: dict[str, list[dict[str, Any]]] = {}
    for probe, by_pair in pairs.items():
        for (j1, j2), labels in by_pair.items():
            a, b = np.array([x for x, _ in labels], bool), np.array([y for _, y in labels], bool)
            entry = {"judges": [j1, j2], "n": len(labels), "agreement": None, "kappa": None}
            if labels:
                entry.update(agreement=float(np.mean(a == b)), kappa=cohen_kappa(a, b))
            out.setdefault(probe, []).append(entry)
    return out
