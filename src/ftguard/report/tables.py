"""Plain-text tables shared by the Markdown, HTML and terminal renderers (each escapes them its own way).

    header, rows = summary_table(summary)

Every function returns `(header, rows)` of plain strings; scores are shown in % and deltas in points.
"""

from __future__ import annotations

from typing import Any

from ftguard.categories import PASS_WORDS

Table = tuple[list[str], list[list[str]]]


def fmt_pct(x: float | None) -> str:
    """0.625 -> "62.5"; None -> "n/a"."""
    return "n/a" if x is None else f"{100 * x:.1f}"


def fmt_points(x: float | None) -> str:
    """A change in points: 0.125 -> "+12.5"."""
    return "n/a" if x is None else f"{100 * x:+.1f}"


def fmt_delta(stats: dict[str, Any], scale: float = 100.0, digits: int = 1) -> str:
    """"+12.5 [+3.3, +21.7]" from a paired-stats dict; `scale`=1 for log-likelihoods."""
    if stats.get("delta") is None:
        return "n/a"
    lo, hi = stats["ci"]
    return f"{scale * stats['delta']:+.{digits}f} [{scale * lo:+.{digits}f}, {scale * hi:+.{digits}f}]"


def fmt_p(p: float | None) -> str:
    """McNemar p-value, three decimals."""
    return "n/a" if p is None else ("<0.001" if p < 0.001 else f"{p:.3f}")


def fmt_seconds(s: float | None) -> str:
    """12.3 -> "12.3 s"; 4000 -> "1h 06m"."""
    if s is None:
        return "n/a"
    s = float(s)
    if s < 60:
        return f"{s:.1f} s"
    if s < 3600:
        return f"{int(s // 60)}m {int(s % 60):02d}s"
    return f"{int(s // 3600)}h {int(s % 3600 // 60):02d}m"


def fmt_count(n: int | None) -> str:
    """134515008 -> "134.5M"."""
    if n is None:
        return "n/a"
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def flip_title(category: str, direction: str) -> str:
    """"safe → unsafe" for a safety regression, "wrong → correct" for a proficiency improvement."""
    good, bad = PASS_WORDS.get(category, ("correct", "wrong"))
    return f"{good} → {bad}" if direction == "pass_to_fail" else f"{bad} → {good}"


def score_cell(stats: dict[str, Any]) -> str:
    """"62.5", or with judge errors "62.5 (3 err; worst 57.5)": the worst case counts errors as failures."""
    if not stats.get("n_errors"):
        return fmt_pct(stats["mean"])
    worst = stats.get("worst_mean")
    return fmt_pct(stats["mean"]) + f" ({stats['n_errors']} err" + ("" if worst is None else f"; worst {fmt_pct(worst)}") + ")"


def worst_cell(stats: dict[str, Any]) -> str:
    """The worst-case change (the tuned model's judge errors as failures, the base's as passes)."""
    if not stats.get("n_errors"):
        return "= Δ (no judge errors)"
    d = stats.get("worst_delta")
    return "n/a" if d is None else fmt_delta({"delta": d, "ci": stats.get("worst_ci") or [d, d]})


def summary_table(summary: dict[str, Any]) -> Table:
    """Rows per probe (plus a category mean where a category has several probes): base, then score and Δ."""
    methods = summary["methods"]
    plain = [m for m in summary["models"] if m not in methods]  # base, or every model when there is no base
    header = ["category", "probe", "n"] + [f"{m} %" for m in plain]
    for m in methods:
        header += [f"{m} %", f"Δ {m} [95% CI]"]
    rows = []
    for cat, probes in summary["categories"].items():
        for probe in probes:
            n = max(summary["scores"][m][probe]["n"] for m in summary["models"])
            row = [cat, probe_cell(summary, probe), str(n)] + [score_cell(summary["scores"][m][probe]) for m in plain]
            for m in methods:
                row += [score_cell(summary["scores"][m][probe]), fmt_delta(summary["deltas"][m][probe])]
            rows.append(row)
            rows += subset_rows(summary, cat, probe, plain, methods)
        if len(probes) > 1:
            row = [cat, f"(mean of {len(probes)} probes)", ""]
            row += [score_cell(summary["category_scores"][m][cat]) for m in plain]
            for m in methods:
                row += [score_cell(summary["category_scores"][m][cat]), fmt_delta(summary["category_deltas"][m][cat])]
            rows.append(row)
    return header, rows


def probe_cell(summary: dict[str, Any], probe: str) -> str:
    """The probe's name, with a warning when its primary judge does not measure it reliably (κ < 0.6)."""
    rel = (summary.get("reliability") or {}).get(probe) or {}
    return f"{probe} (⚠ {rel['note']})" if rel.get("reliable") is False else probe


def subset_rows(summary: dict[str, Any], cat: str, probe: str, plain: list[str], methods: list[str]) -> list[list[str]]:
    """One row per part of a probe (xstest: safe prompts, unsafe prompts), under the probe's own row."""
    rows = []
    for name in (summary.get("subsets") or {}).get(probe, []):
        sc = summary["subset_scores"]
        n = max(sc[m][probe][name]["n"] for m in summary["models"])
        row = [cat, f"{probe} · {name}", str(n)] + [score_cell(sc[m][probe][name]) for m in plain]
        for m in methods:
            row += [score_cell(sc[m][probe][name]), fmt_delta(summary["subset_deltas"][m][probe][name])]
        rows.append(row)
    return rows


def long_table(summary: dict[str, Any]) -> Table:
    """One row per (probe, model), narrow enough for a terminal however many methods ran."""
    header = ["category", "probe", "model", "n", "score %", "Δ vs base [95% CI]", "McNemar p"]
    rows = []
    for cat, probes in summary["categories"].items():
        entries = [(p, summary["scores"], summary["deltas"]) for p in probes]
        if len(probes) > 1:
            entries.append((None, summary["category_scores"], summary["category_deltas"]))
        for probe, scores, deltas in entries:
            key = probe or cat
            parts = [(probe_cell(summary, probe) if probe else f"(mean of {len(probes)})", scores, deltas, key)]
            for name in (summary.get("subsets") or {}).get(probe, []) if probe else []:
                parts.append((f"{probe} · {name}", {m: {key: v[probe][name]} for m, v in summary["subset_scores"].items()},
                              {m: {key: v[probe][name]} for m, v in summary["subset_deltas"].items()}, key))
            for label, sc, dl, k in parts:
                for i, m in enumerate(summary["models"]):
                    d = dl.get(m, {}).get(k)
                    rows.append([cat if i == 0 and label == parts[0][0] else "", label if i == 0 else "", m,
                                 str(sc[m][k]["n"]), score_cell(sc[m][k]), fmt_delta(d) if d else "",
                                 fmt_p(d.get("mcnemar_p")) if d and "mcnemar_p" in d else ""])
    return header, rows


def paired_table(summary: dict[str, Any]) -> Table:
    """Per method and probe: items paired, missing, Δ with CI, McNemar p and flip counts."""
    header = ["method", "probe", "n paired", "missing", "Δ points [95% CI]", "McNemar p", "pass→fail", "fail→pass",
              "judge errors", "worst case Δ [95% CI]"]
    rows = [[m, p, str(s["n_paired"]), str(s["n_missing"]), fmt_delta(s), fmt_p(s["mcnemar_p"]),
             str(s["pass_to_fail"]), str(s["fail_to_pass"]), str(s.get("n_errors", 0)), worst_cell(s)]
            for m, per_probe in summary["deltas"].items() for p, s in per_probe.items()]
    return header, rows


def gate_table(verdict: dict[str, Any]) -> Table:
    """One row per method and gate check: the limit, the change, the lower 95% bound it was decided on, the verdict."""
    header = ["method", "check", "key", "limit (points)", "change", "lower 95% bound", "basis", "verdict"]
    rows = [[c["method"], c["check"], c["key"], f"{c['limit']:g}", fmt_points(None if c["delta"] is None else c["delta"] / 100),
             fmt_points(None if c["lower"] is None else c["lower"] / 100), c["basis"], "PASS" if c["passed"] else "FAIL"]
            for c in verdict["checks"]]
    return header, rows


def loglik_table(summary: dict[str, Any]) -> Table:
    """Mean per-token log-likelihood of the reference answers: base, then each method and its paired Δ."""
    means, deltas = summary["loglik"].get("means", {}), summary["loglik"].get("deltas", {})
    plain = [m for m in summary["models"] if m not in summary["methods"]]
    probes = list(next(iter(means.values()), {}))
    header = ["probe"] + plain + [c for m in summary["methods"] for c in (m, f"Δ {m} [95% CI]", "n")]
    rows = []
    for probe in probes:
        row = [probe] + [_loglik_cell(means[m][probe]) for m in plain]
        for m in summary["methods"]:
            d = deltas[m][probe]
            row += [_loglik_cell(means[m][probe]), fmt_delta(d, scale=1.0, digits=3), str(d["n_paired"])]
        rows.append(row)
    return header, rows


def _loglik_cell(stats: dict[str, Any]) -> str:
    return "n/a" if stats["mean"] is None else f"{stats['mean']:.3f}"


def calibration_cell(rec: dict[str, Any] | None, judge: str = "", probe: str = "") -> str:
    if judge.startswith(f"{probe}:") and probe:
        return "judge-free: log-likelihood of the choices, nothing to calibrate"
    if not rec:
        return "not measured"
    kappa = "n/a" if rec.get("kappa") is None else f"{rec['kappa']:.2f}"
    return f"κ {kappa}, accuracy {fmt_pct(rec['accuracy'])}% (n={rec['n']}, {rec['labels']}, v{rec['version']})"


def judges_table(summary: dict[str, Any]) -> Table:
    """Which judge produced each probe's score, its measured agreement with human labels, and which others ran."""
    cal = summary.get("judge_calibration") or {}
    header = ["probe", "category", "primary judge (score)", "vs human labels (calibration set)", "other judges"]
    rows = []
    for p, i in summary["probes"].items():
        primary = i["judge"] or "n/a"
        mine = cal.get(p) or {}
        others = [f"{j} ({calibration_cell(mine.get(j))})" for j in i["judges"] if j != i["judge"]]
        rows.append([p, i["category"], primary, calibration_cell(mine.get(primary), primary, p), "; ".join(others) or "-"])
    return header, rows


def agreement_table(summary: dict[str, Any]) -> Table:
    """Pass/fail agreement and Cohen's kappa for each pair of judges on the rows both scored."""
    header = ["probe", "judges", "n", "agreement %", "Cohen's κ"]
    rows = [[p, " vs ".join(e["judges"]), str(e["n"]), fmt_pct(e["agreement"]),
             "n/a" if e["kappa"] is None else f"{e['kappa']:.2f}"]
            for p, entries in summary["judge_agreement"].items() for e in entries]
    return header, rows


def methods_table(manifest: dict[str, Any]) -> Table:
    """Each method's name, parameters, learning rate, parameter counts and training time."""
    header = ["label", "method", "params", "lr", "trainable / total params", "train time", "s/step"]
    rows = []
    for label, m in (manifest.get("methods") or {}).items():
        params = ", ".join(f"{k}={v}" for k, v in (m.get("params") or {}).items()) or "-"
        sps = m.get("seconds_per_step")
        rows.append([label, str(m.get("name", label)), params, "n/a" if m.get("lr") is None else f"{m['lr']:g}",
                     f"{fmt_count(m.get('trainable_params'))} / {fmt_count(m.get('total_params'))}",
                     fmt_seconds(m.get("train_seconds")), "n/a" if sps is None else f"{sps:.2f}"])
    return header, rows


def run_facts(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, value) lines about the run: model, git SHA, seed, timings and versions, where the manifest has them."""
    cfg = manifest.get("config") or {}
    model = manifest.get("model") or (cfg.get("model") or {}).get("name_or_path")
    facts = [("model", str(model))] if model else []
    for key in ("evaluated_model", "git_sha", "seed", "started", "finished", "train_conversations", "host"):
        value = manifest.get(key)
        if value is not None:
            text = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else str(value)
            facts.append((key, text))
    drift = {k: v for k, v in (manifest.get("drift") or {}).items() if v is not None}
    if drift:
        facts.append(("drift", ", ".join(f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v}"
                                         for k, v in drift.items())))
    timings = manifest.get("timings") or {}
    if timings:
        facts.append(("timings", ", ".join(f"{k} {fmt_seconds(v)}" for k, v in timings.items())))
    versions = manifest.get("versions") or {}
    if versions:
        facts.append(("versions", ", ".join(f"{k} {v}" for k, v in versions.items())))
    return facts
