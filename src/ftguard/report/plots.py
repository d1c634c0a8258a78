"""Figures for the report: one bar chart per category and a proficiency-vs-retention trade-off plot.

    paths = make_figures(summary, manifest, run_dir / "figures")   # {"proficiency": .../proficiency.png, ...}

Bars follow the Tenyx "forgetting in fine-tuning" figures: base and each method on the x axis, score in %,
95% CI error bars, and each tuned model's change vs base (paired, in points) printed above its bar.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display, and the same output on every machine
import matplotlib.pyplot as plt  # noqa: E402

from ftguard.categories import RETAINED  # noqa: E402
from ftguard.errors import DataError  # noqa: E402

BASE_COLOR = "#8c8c8c"
UP, DOWN, FLAT = "#1a7f37", "#cf222e", "#57606a"
CURVE_COLORS = ("#6e40c9", "#bf3989", "#0a7ea4", "#9a6700")  # distinct from the tab10 method colours
MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*", "h", "<", ">")  # with the colour, each method's own legend key
RC = {"text.parse_math": False, "font.size": 10, "axes.spines.top": False, "axes.spines.right": False}


def model_colors(summary: dict[str, Any]) -> dict[str, str]:
    """A fixed colour per model: grey for base, the tab10 cycle for the others in summary order."""
    cycle = plt.get_cmap("tab10").colors
    others = [m for m in summary["models"] if m != "base"]
    return {"base": BASE_COLOR, **{m: matplotlib.colors.to_hex(cycle[i % 10]) for i, m in enumerate(others)}}


def change_color(delta_points: float) -> str:
    """Green for a gain, red for a loss, grey when it rounds to zero (higher is better on every axis)."""
    return FLAT if round(delta_points, 1) == 0 else (UP if delta_points > 0 else DOWN)


def figure_name(category: str) -> str:
    """A safe, deterministic file stem for a category."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", category) or "category"


def plot_category(summary: dict[str, Any], category: str, path: Path) -> Path:
    """Bar chart of every model's score on one category, with CI bars and the change vs base above each bar.

    Args:
        summary: The dict from `summarize`.
        category: A key of summary["categories"]; several probes are averaged per model.
        path: Where to write the PNG.
    """
    models, colors = summary["models"], model_colors(summary)
    probes = summary["categories"][category]
    stats = [summary["category_scores"][m][category] for m in models]
    with plt.rc_context(RC):
        fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(models), 4.2))
        top = 100.0
        for x, (model, s) in enumerate(zip(models, stats)):
            if s["mean"] is None:
                why = "all judge errors" if s["n_errors"] else "no items"
                ax.text(x, 2, why, ha="center", va="bottom", color=FLAT, fontsize=9)
                continue
            mean, (lo, hi) = 100 * s["mean"], (100 * c for c in s["ci"])
            ax.bar(x, mean, width=0.62, color=colors[model], zorder=2)
            ax.errorbar(x, mean, yerr=[[mean - lo], [hi - mean]], fmt="none", ecolor="#24292f", capsize=5, zorder=3)
            ax.text(x, min(mean, lo) / 2 if mean > 12 else mean + 1, f"{mean:.1f}", ha="center",
                    va="center" if mean > 12 else "bottom", color="white" if mean > 12 else "#24292f", fontsize=9)
            delta = summary["category_deltas"].get(model, {}).get(category, {}).get("delta")
            if delta is not None:
                ax.text(x, hi + 2, f"{100 * delta:+.1f}", ha="center", va="bottom", fontsize=12,
                        fontweight="bold", color=change_color(100 * delta))
                top = max(top, hi + 12)
        ticks = [f"{m}\nn={s['n']}" + (f" ({s['n_errors']} err)" if s["n_errors"] else "")
                 for m, s in zip(models, stats)]
        ax.set_xticks(range(len(models)), ticks)
        ax.set_xlim(-0.6, len(models) - 0.4)
        ax.set_ylim(0, max(top, 112))
        ax.set_yticks(range(0, 101, 20))
        ax.set_ylabel("score (%)")
        ax.grid(axis="y", alpha=0.3, zorder=0)
        note = probes[0] if len(probes) == 1 else f"mean of {len(probes)} probes: {', '.join(probes)}"
        ax.set_title(f"{category.capitalize()}  ({note})", fontsize=11, loc="left")
        fig.text(0.01, 0.01, "bars: 95% bootstrap CI · above bars: paired change vs base, points",
                 fontsize=7.5, color=FLAT)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        fig.savefig(path, dpi=130)
        plt.close(fig)
    return path


def _xy_err(stats: dict[str, Any]) -> tuple[float, list[list[float]]]:
    d, (lo, hi) = 100 * stats["delta"], stats["ci"]
    return d, [[d - 100 * lo], [100 * hi - d]]


def _point(value: float) -> float:
    """Curve values are fractions like summary deltas; a magnitude above 1 can only be points already."""
    return float(value) if abs(value) > 1 else 100 * float(value)


def _y_stats(summary: dict[str, Any], method: str, y_key: str) -> dict[str, Any]:
    """The change on the y axis: a category mean, or one probe (several probes of an axis get a panel each)."""
    if y_key in summary["category_deltas"].get(method, {}):
        return summary["category_deltas"][method][y_key]
    return summary["deltas"][method][y_key]


def panel_title(summary: dict[str, Any], y_key: str) -> str:
    if y_key in summary["categories"]:
        return y_key
    info = summary["probes"][y_key]
    kind = "judge-free" if str(info.get("judge", "")).startswith(f"{y_key}:") else f"judged by {info.get('judge')}"
    return f"{info['category']}: {y_key} ({kind})"


def _tradeoff_panel(ax, summary: dict[str, Any], curves: dict[str, list[dict]], y_cat: str) -> None:
    colors = model_colors(summary)
    xs, ys = [0.0], [0.0]
    on_curves = {p.get("model") for pts in curves.values() for p in pts}
    for k, method in enumerate(m for m in summary["methods"] if m not in on_curves):
        sx, sy = summary["category_deltas"][method]["proficiency"], _y_stats(summary, method, y_cat)
        if sx["delta"] is None or sy["delta"] is None:
            continue
        (x, xerr), (y, yerr) = _xy_err(sx), _xy_err(sy)
        # named in a legend keyed by colour and marker, never by a text label placed near the point: two
        # methods at nearly the same place cannot swap names
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=MARKERS[k % len(MARKERS)], ms=8, color=colors[method],
                    capsize=4, zorder=3, label=method)
        xs += [x - xerr[0][0], x + xerr[1][0]]
        ys += [y - yerr[0][0], y + yerr[1][0]]
    for k, (name, points) in enumerate(curves.items()):
        color = CURVE_COLORS[k % len(CURVE_COLORS)]
        pts = [p for p in points if p.get("proficiency") is not None and p.get(y_cat) is not None]
        if not pts:
            continue
        cx, cy = [_point(p["proficiency"]) for p in pts], [_point(p[y_cat]) for p in pts]
        ax.plot(cx, cy, "--s", ms=5, lw=1.2, color=color, label=name, zorder=2)
        for p, x, y in zip(pts, cx, cy):
            ax.annotate(str(p.get("label", "")), (x, y), xytext=(4, -10), textcoords="offset points",
                        fontsize=7.5, color=color)
        xs, ys = xs + cx, ys + cy
    pad_x, pad_y = max(5.0, 0.15 * (max(xs) - min(xs))), max(5.0, 0.15 * (max(ys) - min(ys)))
    x0, x1, y0, y1 = min(xs) - pad_x, max(xs) + pad_x, min(ys) - pad_y, max(ys) + pad_y
    ax.add_patch(plt.Rectangle((0, 0), x1, y1, color=UP, alpha=0.08, lw=0, zorder=0))
    ax.text(x1, y1, "ideal: task up, nothing lost ", ha="right", va="top", fontsize=8, color=UP)
    ax.axhline(0, ls="--", lw=1, color=FLAT, zorder=1)
    ax.axvline(0, ls="--", lw=1, color=FLAT, zorder=1)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    ax.set_xlabel("proficiency change (points)")
    title = panel_title(summary, y_cat) if "probes" in summary else y_cat
    ax.set_ylabel(f"{title.split(' (')[0]} change (points)")
    ax.set_title(f"Proficiency vs {title}", fontsize=10, loc="left")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="best", framealpha=0.85)


def plot_tradeoff(summary: dict[str, Any], path: Path, curves: dict[str, list[dict]] | None = None) -> Path | None:
    """Proficiency change (x) vs safety and knowledge change (y), one point per method with 2D CI bars.

    Args:
        summary: The dict from `summarize`.
        path: Where to write the PNG.
        curves: Optional {"name": [{"label", "proficiency", "safety", "knowledge"}, ...]} drawn as lines, e.g.
            a WiSE-FT sweep. Values are changes vs base as fractions, like summary deltas.

    Returns:
        The path, or None when there is no method or no proficiency probe to plot.
    """
    # one panel per probe of each axis that can be lost (safety: harmful_refusal, xstest, toxigen_counter;
    # knowledge: the judge-free lm_eval beside the judged dolly_qa), so no probe hides in an axis mean
    panels = [p for c in RETAINED for p in summary["categories"].get(c, [])]
    if not summary["methods"] or "proficiency" not in summary["categories"] or not panels:
        return None
    with plt.rc_context(RC):
        cols = min(3, len(panels))
        rows = -(-len(panels) // cols)
        fig, axes = plt.subplots(rows, cols, figsize=(5.2 * cols, 4.6 * rows), squeeze=False)
        for ax, key in zip(axes.flat, panels):
            _tradeoff_panel(ax, summary, curves or {}, key)
        for ax in list(axes.flat)[len(panels):]:
            ax.set_visible(False)
        fig.text(0.01, 0.01, "error bars: 95% paired bootstrap CI of each change vs base", fontsize=7.5, color=FLAT)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        fig.savefig(path, dpi=130)
        plt.close(fig)
    return path


def resolve_curve(points: Any, summary: dict[str, Any]) -> Any:
    """Curve points given as model labels (e.g. a WiSE-FT sweep's "lora@0.5") become their category deltas."""
    if not isinstance(points, list):
        return points
    out = []
    for p in points:
        if isinstance(p, str):
            deltas = summary["category_deltas"].get(p)
            if deltas is None:
                continue
            probe_deltas = {k: d["delta"] for k, d in summary.get("deltas", {}).get(p, {}).items()}
            p = {"label": p.split("@")[-1], "model": p if "@" in p else None, **probe_deltas,
                 **{c: d["delta"] for c, d in deltas.items()}}
        out.append(p)
    return out


def make_figures(summary: dict[str, Any], manifest: dict[str, Any], fig_dir: Path) -> dict[str, Path]:
    """Write figures/<category>.png for each category and figures/tradeoff.png; returns {name: path}."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    paths = {cat: plot_category(summary, cat, fig_dir / f"{figure_name(cat)}.png") for cat in summary["categories"]}
    curves = manifest.get("curves") or {}
    if isinstance(curves, dict):
        curves = {name: resolve_curve(points, summary) for name, points in curves.items()}
    if not isinstance(curves, dict) or not all(isinstance(v, list) for v in curves.values()):
        raise DataError(f"manifest.json 'curves' must map a curve name to a list of points "
                        f"({{'wise-ft': [{{'label': 'alpha=0.5', 'proficiency': 0.1, 'safety': -0.05}}]}}), "
                        f"got {str(curves)[:200]}")
    tradeoff = plot_tradeoff(summary, fig_dir / "tradeoff.png", curves)
    if tradeoff is not None:
        paths["tradeoff"] = tradeoff
    return paths
