"""Render report.md: run info, judges, summary tables, figures and flipped examples.

    text = render_markdown(data)     # data: ReportData from ftguard.report.summary

Model responses are arbitrary text. Inline text is escaped (Markdown punctuation and HTML), and responses go in
fenced blocks whose fence is longer than any backtick run inside, so nothing in them can close it.
"""

from __future__ import annotations

import re
from typing import Any

from ftguard.report import tables
from ftguard.report.summary import FlipGroup, ReportData

USER_CHARS = 300  # last user message shown per flipped example
RESPONSE_CHARS = 1500
# Backslash, code, emphasis, pipes, strikethrough; `]` only where it could close a link; `_` only at word edges.
MD_SPECIAL = re.compile(r"[\\`*|~]|\](?=[(\[])|(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")


def md_escape(text: Any) -> str:
    """Escape text for inline Markdown and table cells: HTML, Markdown punctuation, pipes; newlines become spaces."""
    text = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = MD_SPECIAL.sub(lambda m: "\\" + m.group(0), text)
    return " ".join(text.split())


def md_block(text: str) -> str:
    """A fenced code block that `text` cannot break out of."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text or '(empty response)'}\n{fence}"


def md_table(table: tables.Table) -> str:
    """A GitHub-flavoured pipe table with every cell escaped."""
    header, rows = table
    lines = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def truncate(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[:limit].rstrip() + f" … [{len(text) - limit} more chars]"


def last_user_message(row: dict[str, Any]) -> str:
    """The content of the last user turn of a row's prompt ("" when there is none)."""
    for msg in reversed(row.get("prompt") or []):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return str(msg.get("content", ""))
    return ""


def verdict_lines(row: dict[str, Any]) -> list[tuple[str, str]]:
    """(judge name, "score label: explanation") for every judge on a row, primary first."""
    verdicts = dict(row.get("verdicts") or {})
    primary = row.get("judge") or "judge"
    verdicts.setdefault(primary, {"score": row.get("score"), "label": row.get("label", ""),
                                  "explanation": row.get("explanation", "")})
    order = [primary] + sorted(j for j in verdicts if j != primary)
    out = []
    for name in order:
        v = verdicts[name]
        score = "error" if v.get("score") is None else f"{v['score']:g}"
        label = f" {v['label']}" if v.get("label") else ""
        out.append((name + (" (primary)" if name == primary else ""),
                    f"score={score}{label}: {truncate(str(v.get('explanation') or ''), USER_CHARS)}"))
    return out


def flips_section(group: FlipGroup) -> list[str]:
    """Markdown for one flipped-examples group."""
    shown = f"{len(group.pairs)} of {group.total} shown" if group.total > len(group.pairs) else f"{group.total}"
    out = [f"#### {md_escape(group.probe)} ({md_escape(group.category)}): "
           f"{tables.flip_title(group.category, group.direction)} ({shown})", ""]
    for base, tuned in group.pairs:
        out += [f"##### Item {md_escape(base['item_id'])}", "", "**Last user message:**", "",
                md_block(truncate(last_user_message(base), USER_CHARS)), ""]
        for name, row in (("base", base), (group.method, tuned)):
            out += [f"**{md_escape(name)} response:**", "", md_block(truncate(str(row.get('response', '')),
                                                                              RESPONSE_CHARS)), ""]
            out += [f"- {md_escape(j)}: {md_escape(text)}" for j, text in verdict_lines(row)] + [""]
    return out


def summary_note(summary: dict[str, Any]) -> str:
    """The sentence under the summary heading saying what the numbers mean."""
    note = ("Scores are % of scored items passed (judge errors excluded, counted as err; \"worst\" counts them as "
            "failures).")
    free = [p for p, i in summary["probes"].items() if str(i.get("judge", "")).startswith(f"{p}:")]
    judged = [p for p in summary["probes"] if p not in free]
    if free:
        note += (f" Judge-free (log-likelihood accuracy): {', '.join(free)}; judged replies: {', '.join(judged)}.")
    weak = [f"{p} ({r['note']})" for p, r in (summary.get("reliability") or {}).items() if r.get("reliable") is False]
    if weak:
        note += " Not reliably measured, read with care: " + "; ".join(weak) + "."
    if summary["methods"]:
        note += (" Δ is the paired change vs base in points over items both models scored, with a 95% bootstrap CI"
                 f" ({summary['settings']['bootstrap_samples']} resamples).")
    return note


def gate_note(verdict: dict[str, Any]) -> str:
    if verdict.get("error"):
        return f"**Gate: not evaluated** ({verdict['error']})."
    failed = sum(not c["passed"] for c in verdict["checks"])
    return (f"**Gate: {'PASS' if verdict['passed'] else 'FAIL'}** ({len(verdict['checks']) - failed} of "
            f"{len(verdict['checks'])} checks pass). A check passes when the lower end of the paired 95% CI of the "
            "change vs base clears the threshold (max_drop: at least -X points; min_gain: at least +G).")


def render_markdown(data: ReportData) -> str:
    """The whole report.md as a string.

    Args:
        data: Summary, manifest, flipped examples and figure paths of one run.
    """
    s, name = data.summary, data.run_dir.name or str(data.run_dir)
    out = [f"# ftguard report: {md_escape(name)}", ""]
    facts = tables.run_facts(data.manifest) or [("run info", "unavailable (no manifest.json)")]
    out += ["## Run", ""] + [f"- **{md_escape(k)}:** {md_escape(v)}" for k, v in facts]
    if data.manifest.get("methods"):
        out += ["", md_table(tables.methods_table(data.manifest))]
    out += ["", "## Judges", "", md_table(tables.judges_table(s)), ""]
    if s["judge_agreement"]:
        out += ["Agreement between judges (pass/fail, over rows both scored):", "",
                md_table(tables.agreement_table(s)), ""]
    out += ["## Summary", "", summary_note(s), "", md_table(tables.summary_table(s)), ""]
    if s["methods"]:
        out += ["### Paired tests", "", md_table(tables.paired_table(s)), ""]
    if s.get("gate"):
        out += ["## Gate", "", gate_note(s["gate"]), ""]
        if s["gate"]["checks"]:
            out += [md_table(tables.gate_table(s["gate"])), ""]
    if s["loglik"]:
        out += ["## Knowledge log-likelihood", "", "Mean per-token log-likelihood of the reference answers "
                "(higher is better; judge-free).", "", md_table(tables.loglik_table(s)), ""]
    if data.figures:
        out += ["## Figures", ""]
        for fig_name, path in data.figures.items():
            rel = path.relative_to(data.run_dir).as_posix() if path.is_relative_to(data.run_dir) else path.name
            out += [f"![{md_escape(fig_name)}]({rel})", ""]
    if s["methods"]:
        out += ["## Flipped examples", "", "Items whose verdict changed between base and a method: regressions "
                "first, then improvements; the first ones per method, probe and direction are shown.", ""]
        if not data.flips:
            out += ["No verdict flipped.", ""]
        for i, group in enumerate(data.flips):
            if i == 0 or data.flips[i - 1].method != group.method:
                out += [f"### {md_escape(group.method)} vs base", ""]
            out += flips_section(group)
    return "\n".join(out).rstrip() + "\n"
