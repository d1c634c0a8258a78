"""Assemble summary.json and the flipped examples from results rows; the statistics live in compare.py.

    summary = summarize(load_results(run_dir), load_manifest(run_dir))
    groups = flip_groups(rows, summary, max_flips=5)

Layout of the summary (scores and deltas are fractions; multiply by 100 for points):
    models, methods, probes {probe: {category, judge, judges}}, categories {category: [probe, ...]},
    scores[model][probe], deltas[method][probe], category_scores[model][category],
    category_deltas[method][category], loglik {means: {model: {probe}}, deltas: {method: {probe}}},
    judge_agreement[probe], judge_calibration {judge: its agreement with the human calibration labels}, settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ftguard.categories import CATEGORIES
from ftguard.report.compare import (
    BASE,
    Index,
    combine,
    index_rows,
    judge_agreement,
    paired_stats,
    report_setting,
    score_stats,
    worst_bound,
)

DEFAULT_BOOTSTRAP = 2000
DEFAULT_MAX_FLIPS = 5
DIRECTIONS = ("pass_to_fail", "fail_to_pass")  # regressions first


@dataclass(frozen=True)
class FlipGroup:
    """Items of one probe whose verdict flipped one way between base and one method."""

    method: str
    probe: str
    category: str
    direction: str  # "pass_to_fail" or "fail_to_pass"
    total: int  # how many flipped; `pairs` holds the first max_flips of them
    pairs: list[tuple[dict[str, Any], dict[str, Any]]] = field(default_factory=list)  # (base row, tuned row)


@dataclass(frozen=True)
class ReportData:
    """Everything the Markdown and HTML renderers show."""

    run_dir: Path
    summary: dict[str, Any]
    manifest: dict[str, Any]
    flips: list[FlipGroup]
    figures: dict[str, Path]  # figure name -> file path (under run_dir/figures)


def model_order(rows: Sequence[dict[str, Any]], manifest: dict[str, Any]) -> list[str]:
    """"base" first, then methods in manifest order, then any other model in order of appearance."""
    seen = list(dict.fromkeys(r["model"] for r in rows))
    listed = [m for m in (manifest.get("methods") or {}) if m in seen]
    rest = [m for m in seen if m != BASE and m not in listed]
    return ([BASE] if BASE in seen else []) + listed + rest


def probe_info(rows: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Category, primary judge and all judges of each probe, ordered by category then name."""
    info: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = info.setdefault(row["probe"], {"category": row["category"], "judge": row.get("judge"), "judges": []})
        for name in [row.get("judge"), *(row.get("verdicts") or {})]:
            if name and name not in entry["judges"]:
                entry["judges"].append(name)

    def rank(probe: str) -> tuple[int, str, str]:
        cat = info[probe]["category"]
        return (CATEGORIES.index(cat) if cat in CATEGORIES else len(CATEGORIES), cat, probe)

    return {p: info[p] for p in sorted(info, key=rank)}


def judge_calibration(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """probe -> judge -> its measured agreement with human labels, as recorded in the run's manifest when the
    run happened (so re-reporting an old run never changes it)."""
    return dict(manifest.get("judge_calibration") or {})


def summarize(rows: Sequence[dict[str, Any]], manifest: dict[str, Any]) -> dict[str, Any]:
    """Compute every number in summary.json from results rows and the manifest.

    Args:
        rows: ResultRow dicts from results.jsonl.
        manifest: manifest.json contents; `config.report.bootstrap_samples` sets the bootstrap size.
    """
    n_boot = report_setting(manifest, "bootstrap_samples", DEFAULT_BOOTSTRAP)
    index = index_rows(rows)
    models = model_order(rows, manifest)
    methods = [m for m in models if m != BASE] if BASE in models else []
    probes = probe_info(rows)
    categories: dict[str, list[str]] = {}
    for probe, info in probes.items():
        categories.setdefault(info["category"], []).append(probe)

    scores, score_draws = {}, {}
    for model in models:
        rng = np.random.default_rng(0)
        for probe in probes:
            stats, score_draws[model, probe] = score_stats(index.get((model, probe), {}), rng, n_boot)
            scores.setdefault(model, {})[probe] = stats
    deltas, delta_draws, worst_draws = {}, {}, {}
    for method in methods:
        rng = np.random.default_rng(0)
        for probe in probes:
            base, tuned = index.get((BASE, probe), {}), index.get((method, probe), {})
            stats, delta_draws[method, probe] = paired_stats(base, tuned, rng, n_boot)
            worst_draws[method, probe] = stats.pop("_worst_draws", delta_draws[method, probe])
            deltas.setdefault(method, {})[probe] = stats
    cat_deltas = by_category(deltas, delta_draws, categories, "delta", ("n_paired", "pass_to_fail", "fail_to_pass",
                                                                        "n_errors"))
    worst = by_category({m: {p: {"delta": worst_bound(s)[0]} for p, s in d.items()} for m, d in deltas.items()},
                        worst_draws, categories, "delta", ())
    for m, per_cat in cat_deltas.items():
        for cat, s in per_cat.items():
            s.update(worst_delta=worst[m][cat]["delta"] if s["n_errors"] else None,
                     worst_ci=worst[m][cat]["ci"] if s["n_errors"] else None)

    subsets, subset_scores, subset_deltas = subset_stats(index, models, methods, probes, n_boot)
    return {
        "models": models,
        "methods": methods,
        "subsets": subsets,
        "subset_scores": subset_scores,
        "subset_deltas": subset_deltas,
        "probes": probes,
        "categories": categories,
        "scores": scores,
        "deltas": deltas,
        "category_scores": by_category(scores, score_draws, categories, "mean", ("n", "n_errors")),
        "category_deltas": cat_deltas,
        "loglik": loglik_summary(index, models, methods, probes, n_boot),
        "judge_agreement": judge_agreement(rows),
        "judge_calibration": judge_calibration(manifest),
        "reliability": reliability(probes, judge_calibration(manifest)),
        "settings": {"bootstrap_samples": n_boot, "seed": 0, "ci": 0.95, "pass_threshold": 0.5},
    }


def subset_stats(index: Index, models: list[str], methods: list[str], probes: dict, n_boot: int) -> tuple:
    """Scores and paired deltas per part of a probe whose items name a `subset` (xstest: safe / unsafe)."""
    subsets: dict[str, list[str]] = {}
    for probe in probes:
        names = sorted({r.get("subset") for m in models for r in index.get((m, probe), {}).values()} - {None})
        if len(names) > 1:
            subsets[probe] = names
    scores: dict[str, Any] = {}
    deltas: dict[str, Any] = {}
    for probe, names in subsets.items():
        for name in names:
            part = {m: {i: r for i, r in index.get((m, probe), {}).items() if r.get("subset") == name}
                    for m in models}
            for model in models:
                stats, _ = score_stats(part[model], np.random.default_rng(0), n_boot)
                scores.setdefault(model, {}).setdefault(probe, {})[name] = stats
            for method in methods:
                stats, _ = paired_stats(part[BASE], part[method], np.random.default_rng(0), n_boot)
                stats.pop("_worst_draws", None)
                deltas.setdefault(method, {}).setdefault(probe, {})[name] = stats
    return subsets, scores, deltas


RELIABLE_KAPPA = 0.6  # ftguard.calibration.RELIABLE_KAPPA (not imported: the report reads only the run dir)


def reliability(probes: dict[str, dict[str, Any]], cal: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per probe, whether its primary judge measures the axis reliably: judge-free, or kappa >= 0.6 against careful
    human reading on its calibration set. Shown next to every number the probe produced."""
    out = {}
    for probe, info in probes.items():
        judge = str(info.get("judge") or "")
        if judge.startswith(f"{probe}:"):
            out[probe] = {"reliable": True, "note": "judge-free (log-likelihood)"}
            continue
        rec = (cal.get(probe) or {}).get(judge)
        kappa = (rec or {}).get("kappa")
        if kappa is None:
            out[probe] = {"reliable": None, "note": f"{judge} not calibrated on this probe"}
        elif kappa < RELIABLE_KAPPA:
            out[probe] = {"reliable": False, "kappa": kappa,
                          "note": f"not reliably measured: {judge} agrees with careful reading at κ {kappa:.2f} "
                                  f"< {RELIABLE_KAPPA}"}
        else:
            out[probe] = {"reliable": True, "kappa": kappa, "note": f"{judge} κ {kappa:.2f}"}
    return out


def by_category(stats: dict, draws: dict, categories: dict[str, list[str]], mean_key: str, sum_keys) -> dict:
    """Average each model's (or method's) per-probe statistics over the probes of each category."""
    out: dict[str, dict[str, Any]] = {}
    for model, per_probe in stats.items():
        for cat, cat_probes in categories.items():
            parts = [(per_probe[p], draws[model, p]) for p in cat_probes]
            combined, _ = combine(parts, mean_key, sum_keys)
            out.setdefault(model, {})[cat] = {**combined, "probes": cat_probes}
    return out


def loglik_summary(index: Index, models: list[str], methods: list[str], probes: dict, n_boot: int) -> dict:
    """Mean reference log-likelihood per model, and each method's paired change vs base, per knowledge probe."""
    out: dict[str, dict[str, Any]] = {}
    for probe in probes:
        if not any(r.get("loglik") is not None for m in models for r in index.get((m, probe), {}).values()):
            continue
        for model in models:
            vals = [r["loglik"] for r in index.get((model, probe), {}).values() if r.get("loglik") is not None]
            out.setdefault("means", {}).setdefault(model, {})[probe] = {
                "mean": float(np.mean(vals)) if vals else None, "n": len(vals)}
        for method in methods:
            stats, _ = paired_stats(index.get((BASE, probe), {}), index.get((method, probe), {}),
                                    np.random.default_rng(0), n_boot, field="loglik")
            out.setdefault("deltas", {}).setdefault(method, {})[probe] = stats
    return out


def flip_groups(rows: Sequence[dict[str, Any]], summary: dict[str, Any], max_flips: int) -> list[FlipGroup]:
    """The first `max_flips` flipped items per (method, probe, direction); per method, all regressions come first."""
    index = index_rows(rows)
    groups = []
    for method, per_probe in summary["deltas"].items():
        for direction in DIRECTIONS:
            for probe, stats in per_probe.items():
                ids = stats[f"{direction}_ids"]
                if not ids:
                    continue
                pairs = [(index[BASE, probe][i], index[method, probe][i]) for i in ids[:max_flips]]
                category = summary["probes"][probe]["category"]
                groups.append(FlipGroup(method, probe, category, direction, len(ids), pairs))
    return groups
