"""Render report.html: one self-contained file (inline CSS, figures as base64 `data:` URIs, no scripts).

    text = render_html(data)     # data: ReportData from ftguard.report.summary

Every piece of text, model responses included, goes through html.escape.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ftguard.report import tables
from ftguard.report.markdown import (
    RESPONSE_CHARS,
    USER_CHARS,
    gate_note,
    last_user_message,
    summary_note,
    truncate,
    verdict_lines,
)
from ftguard.report.summary import FlipGroup, ReportData

CSS = """
body { font: 14px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #24292f; }
h1 { border-bottom: 1px solid #d0d7de; padding-bottom: .3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #eaeef2; }
table { border-collapse: collapse; margin: .8em 0; font-size: 13px; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
pre { background: #f6f8fa; border: 1px solid #eaeef2; padding: .6em; white-space: pre-wrap; word-break: break-word;
      max-height: 22em; overflow: auto; }
.pair { display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }
.note { color: #57606a; }
.up { color: #1a7f37; } .down { color: #cf222e; }
img { max-width: 100%; border: 1px solid #eaeef2; margin: .5em 0; }
details { margin: .5em 0 1em; } summary { cursor: pointer; font-weight: 600; }
"""


def esc(text: object) -> str:
    """html.escape of str(text), quotes included."""
    return html.escape(str(text), quote=True)


def html_table(table: tables.Table) -> str:
    """An escaped HTML table; cells that look numeric are right-aligned."""
    header, rows = table
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(text: str) -> str:
    first = text.split(" ", 1)[0]
    try:
        value, numeric = float(first), True
    except ValueError:
        value, numeric = None, text in ("n/a", "<0.001")
    cls = "num" if numeric else ""
    if value and first[0] in "+-":  # a signed change: green up, red down (higher is better everywhere)
        cls += " up" if value > 0 else " down"
    return f'<td class="{cls.strip()}">{esc(text)}</td>' if cls else f"<td>{esc(text)}</td>"


def img_tag(name: str, path: Path) -> str:
    """An <img> with the PNG embedded as a base64 data: URI."""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return f'<img alt="{esc(name)}" src="data:image/png;base64,{data}">'


def pre(text: str) -> str:
    return f"<pre>{esc(text) if text else '<i>(empty response)</i>'}</pre>"


def flips_html(group: FlipGroup) -> str:
    """One collapsible block of flipped examples."""
    shown = f"{len(group.pairs)} of {group.total} shown" if group.total > len(group.pairs) else str(group.total)
    title = (f"{esc(group.probe)} ({esc(group.category)}): "
             f"{esc(tables.flip_title(group.category, group.direction))} ({shown})")
    parts = [f"<details{' open' if group.direction == 'pass_to_fail' else ''}><summary>{title}</summary>"]
    for base, tuned in group.pairs:
        parts.append(f"<h4>Item {esc(base['item_id'])}</h4><p><b>Last user message:</b></p>"
                     f"{pre(truncate(last_user_message(base), USER_CHARS))}<div class='pair'>")
        for name, row in (("base", base), (group.method, tuned)):
            verdicts = "".join(f"<li><b>{esc(j)}</b>: {esc(t)}</li>" for j, t in verdict_lines(row))
            parts.append(f"<div><p><b>{esc(name)} response:</b></p>"
                         f"{pre(truncate(str(row.get('response', '')), RESPONSE_CHARS))}<ul>{verdicts}</ul></div>")
        parts.append("</div>")
    return "".join(parts) + "</details>"


def render_html(data: ReportData) -> str:
    """The whole report.html as a string.

    Args:
        data: Summary, manifest, flipped examples and figure paths of one run.
    """
    s, name = data.summary, data.run_dir.name or str(data.run_dir)
    body = [f"<h1>ftguard report: {esc(name)}</h1>", "<h2>Run</h2><ul>"]
    facts = tables.run_facts(data.manifest) or [("run info", "unavailable (no manifest.json)")]
    body += [f"<li><b>{esc(k)}:</b> {esc(v)}</li>" for k, v in facts] + ["</ul>"]
    if data.manifest.get("methods"):
        body.append(html_table(tables.methods_table(data.manifest)))
    body += ["<h2>Judges</h2>", html_table(tables.judges_table(s))]
    if s["judge_agreement"]:
        body += ["<p>Agreement between judges (pass/fail, over rows both scored):</p>",
                 html_table(tables.agreement_table(s))]
    body += ["<h2>Summary</h2>", f"<p class='note'>{esc(summary_note(s))}</p>", html_table(tables.summary_table(s))]
    if s["methods"]:
        body += ["<h3>Paired tests</h3>", html_table(tables.paired_table(s))]
    if s.get("gate"):
        body += ["<h2>Gate</h2>", f"<p class='note'>{esc(gate_note(s['gate']).replace('**', ''))}</p>"]
        if s["gate"]["checks"]:
            body.append(html_table(tables.gate_table(s["gate"])))
    if s["loglik"]:
        body += ["<h2>Knowledge log-likelihood</h2>", "<p class='note'>Mean per-token log-likelihood of the reference "
                 "answers (higher is better; judge-free).</p>", html_table(tables.loglik_table(s))]
    if data.figures:
        body += ["<h2>Figures</h2>"] + [img_tag(n, p) for n, p in data.figures.items()]
    if s["methods"]:
        body += ["<h2>Flipped examples</h2>", "<p class='note'>Items whose verdict changed between base and a method: "
                 "regressions first, then improvements; the first ones per method, probe and direction are shown.</p>"]
        for i, group in enumerate(data.flips):
            if i == 0 or data.flips[i - 1].method != group.method:
                body.append(f"<h3>{esc(group.method)} vs base</h3>")
            body.append(flips_html(group))
        if not data.flips:
            body.append("<p>No verdict flipped.</p>")
    return (f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>ftguard report: {esc(name)}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
