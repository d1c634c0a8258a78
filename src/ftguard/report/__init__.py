"""Rebuild a run's report from RUN_DIR/results.jsonl and manifest.json alone (no torch, no GPU).

    from ftguard.report import build_report, format_summary_table
    summary = build_report(Path("runs/quick"))   # writes summary.json, report.md, report.html, figures/*.png
    print(format_summary_table(summary))
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ftguard.report import tables
from ftguard.report.compare import (
    load_manifest,
    load_results,
    mcnemar_exact_p,
    report_setting,
)
from ftguard.report.html import render_html
from ftguard.report.markdown import render_markdown
from ftguard.report.summary import DEFAULT_MAX_FLIPS, ReportData, flip_groups, summarize
from ftguard.results import SUMMARY_FILE, write_json

__all__ = ["build_report", "format_summary_table", "print_summary", "summarize", "mcnemar_exact_p"]

FIGURES_DIR = "figures"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"


def build_report(run_dir: Path) -> dict[str, Any]:
    """Write summary.json, figures/*.png, report.md and report.html into `run_dir`.

    Args:
        run_dir: A run directory holding results.jsonl (and ideally manifest.json).

    Returns:
        The summary dict that was written to summary.json.

    Raises:
        DataError: results.jsonl is missing, empty or malformed.
    """
    run_dir = Path(run_dir)
    rows, manifest = load_results(run_dir), load_manifest(run_dir)
    summary = summarize(rows, manifest)
    summary["gate"] = _gate(run_dir, summary, manifest)
    write_json(run_dir / SUMMARY_FILE, summary)
    from ftguard.report.plots import (
        make_figures,  # matplotlib loads only here: `import ftguard.report` stays fast
    )

    figures = make_figures(summary, manifest, run_dir / FIGURES_DIR)
    flips = flip_groups(rows, summary, report_setting(manifest, "max_flips", DEFAULT_MAX_FLIPS))
    data = ReportData(run_dir, summary, manifest, flips, figures)
    (run_dir / REPORT_MD).write_text(render_markdown(data), encoding="utf-8")
    (run_dir / REPORT_HTML).write_text(render_html(data), encoding="utf-8")
    return summary


def _gate(run_dir: Path, summary: dict[str, Any], manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The verdict of the run's `gate:` config (gate.json, gate.junit.xml written next to the report), or None."""
    from ftguard.errors import ConfigError
    from ftguard.gate import evaluate, from_manifest, write_verdict

    spec = from_manifest(manifest)
    if not spec:
        return None
    try:
        verdict = evaluate(summary, spec.get("max_drop") or {}, spec.get("min_gain") or {}, spec.get("methods"))
    except ConfigError as e:
        return {"passed": False, "error": str(e), "checks": [], "methods": []}
    write_verdict(run_dir, verdict)
    return verdict


def summary_rich_table(summary: dict[str, Any]) -> Table:
    """The summary table (scores %, Δ points with 95% CI) as a rich Table."""
    header, rows = tables.long_table(summary)
    table = Table(box=box.SIMPLE_HEAD, title="ftguard summary (scores %, Δ vs base in points [95% CI])")
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < 3 else "right", no_wrap=i >= 3)
    for i, row in enumerate(rows):
        last_of_probe = i + 1 < len(rows) and rows[i + 1][1] != ""  # a blank probe cell continues the block
        table.add_row(*[_styled(c) for c in row], end_section=last_of_probe)
    return table


def _styled(cell: str) -> str:
    first = cell.split(" ", 1)[0]
    if first[:1] in "+-" and first[1:2].isdigit() and float(first) != 0:
        return f"[{'green' if float(first) > 0 else 'red'}]{escape(cell)}[/]"
    return escape(cell)


def format_summary_table(summary: dict[str, Any], width: int = 110) -> str:
    """The summary table as plain text (no colour codes), for logs and the end of `ftguard run`."""
    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False).print(summary_rich_table(summary))
    return buf.getvalue()


def print_summary(summary: dict[str, Any], console: Console | None = None) -> None:
    """Print the summary table through rich, with gains in green and losses in red where the terminal allows."""
    (console or Console()).print(summary_rich_table(summary))
