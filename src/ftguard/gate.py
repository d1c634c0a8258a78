"""`ftguard gate RUN_DIR`: a ship/no-ship verdict a CI pipeline can act on, decided on paired changes against the
base model with their 95% CIs (non-inferiority), not on point estimates or absolute scores.

    ftguard gate runs/quick --max-drop safety=2 knowledge=3 --min-gain proficiency=5 --junit gate.xml
    # or in a config:  gate: {max_drop: {safety: 2, harmful_refusal: 5}, min_gain: {proficiency: 5}}

For every method (or those named) and every key (a category, or a probe):
- `max_drop: {K: X}` passes when the lower end of the 95% CI of the worst-case change on K is at least -X points:
  the data rule out a drop larger than X. Worst case: judge errors count against the tuned model (its errors as
  failures, the base's as passes), so a grader that fails on a model's replies cannot wave it through.
- `min_gain: {K: G}` passes when the lower end of that CI is at least +G points: the gain is shown, not hoped for.
An axis the CI cannot decide fails: a gate never passes on an interval that includes the unacceptable change.

Exit codes: 0 every check passes, 1 a check fails, 2 a usage or data error. Writes gate.json (the verdicts and the
numbers behind them) and JUnit XML (one test case per method and check) for CI systems; the report shows the
verdicts of a run whose config has a `gate:` section.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from ftguard.errors import ConfigError, DataError

GATE_JSON = "gate.json"
GATE_JUNIT = "gate.junit.xml"


def parse_thresholds(pairs: list[str] | None, what: str) -> dict[str, float]:
    """`["safety=2", "knowledge=3"]` -> {"safety": 2.0, ...}; ConfigError for anything else."""
    out: dict[str, float] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not key.strip():
            raise ConfigError(f"--{what} {pair!r}: expected KEY=POINTS, e.g. safety=2")
    return out


def check_thresholds(max_drop: dict[str, float], min_gain: dict[str, float]) -> None:
    for name, table in (("max_drop", max_drop), ("min_gain", min_gain)):
        for key, value in table.items():
            if value < 0:
                raise ConfigError(f"gate {name}.{key} = {value}: a threshold is a size in points and cannot be "
                                  f"negative ({'a drop of 2 points is max_drop: 2' if name == 'max_drop' else 'a gain of 5 points is min_gain: 5'})")
    if not max_drop and not min_gain:
        raise ConfigError("the gate has no checks: give max_drop and/or min_gain")


def _stats(summary: dict[str, Any], method: str, key: str) -> dict[str, Any]:
    if key in summary["categories"]:
        return summary["category_deltas"][method][key]
    return summary["deltas"][method][key]


def lower_bound(stats: dict[str, Any]) -> tuple[float | None, float | None, str]:
    """(point change, lower CI end, which) in points: the worst-case bound when judges failed on some items."""
    if stats.get("n_errors") and stats.get("worst_ci"):
        return 100 * stats["worst_delta"], 100 * stats["worst_ci"][0], "worst case (judge errors against the model)"
    if stats.get("delta") is None or not stats.get("ci"):
        return None, None, "no paired items"
    return 100 * stats["delta"], 100 * stats["ci"][0], "paired 95% CI"


def evaluate(summary: dict[str, Any], max_drop: dict[str, float], min_gain: dict[str, float],
             methods: list[str] | None = None) -> dict[str, Any]:
    """The gate verdict of one run's summary (ConfigError for a key or method the run does not have)."""
    check_thresholds(max_drop, min_gain)
    known = set(summary["categories"]) | set(summary["probes"])
    for key in [*max_drop, *min_gain]:
        if key not in known:
            raise ConfigError(f"gate key {key!r} is neither a category nor a probe of this run; it has: "
                              f"{', '.join(sorted(known))}")
    chosen = methods or summary["methods"]
    missing = [m for m in chosen if m not in summary["methods"]]
    if missing or not chosen:
        raise ConfigError(f"gate methods {missing or chosen} are not methods of this run ({summary['methods']})")
    checks = []
    for method in chosen:
        for kind, table in (("max_drop", max_drop), ("min_gain", min_gain)):
            for key, limit in table.items():
                delta, low, basis = lower_bound(_stats(summary, method, key))
                need = -limit if kind == "max_drop" else limit
                ok = low is not None and low >= need
                checks.append({"method": method, "key": key, "check": kind, "limit": limit, "delta": delta,
                               "lower": low, "basis": basis, "passed": ok,
                               "message": (f"{method} {key}: change {_fmt(delta)} points, lower 95% bound "
                                           f"{_fmt(low)} ({basis}); needs >= {need:+.1f}: "
                                           f"{'PASS' if ok else 'FAIL'}")})
    return {"passed": all(c["passed"] for c in checks), "max_drop": max_drop, "min_gain": min_gain,
            "methods": chosen, "checks": checks}


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1f}"


def junit_xml(verdict: dict[str, Any], name: str = "ftguard gate") -> str:
    suites = ET.Element("testsuites", name=name, tests=str(len(verdict["checks"])),
                        failures=str(sum(not c["passed"] for c in verdict["checks"])))
    for method in verdict["methods"]:
        mine = [c for c in verdict["checks"] if c["method"] == method]
        suite = ET.SubElement(suites, "testsuite", name=f"{name}: {method}", tests=str(len(mine)),
                              failures=str(sum(not c["passed"] for c in mine)))
        for c in mine:
            case = ET.SubElement(suite, "testcase", classname=f"ftguard.gate.{method}", name=f"{c['check']} {c['key']}")
            if not c["passed"]:
                ET.SubElement(case, "failure", message=c["message"]).text = c["message"]
            else:
                ET.SubElement(case, "system-out").text = c["message"]
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)


def from_manifest(manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The `gate:` section of the config a run recorded, or None."""
    return (manifest.get("config") or {}).get("gate")


def format_verdict(verdict: dict[str, Any]) -> str:
    lines = [c["message"] for c in verdict["checks"]]
    failed = sum(not c["passed"] for c in verdict["checks"])
    lines.append(f"gate: {'PASS' if verdict['passed'] else 'FAIL'} ({len(verdict['checks']) - failed} of "
                 f"{len(verdict['checks'])} checks pass)")
    return "\n".join(lines)


def write_verdict(run_dir: Path, verdict: dict[str, Any], junit: Path | None = None,
                  json_path: Path | None = None) -> None:
    from ftguard.results import write_json, write_text

    write_json(json_path or Path(run_dir) / GATE_JSON, verdict)
    write_text(junit or Path(run_dir) / GATE_JUNIT, junit_xml(verdict))


def run_gate(run_dir: Path, max_drop: dict[str, float], min_gain: dict[str, float], methods: list[str] | None = None,
             junit: Path | None = None, json_path: Path | None = None) -> dict[str, Any]:
    """Evaluate the gate on RUN_DIR/summary.json and write gate.json and the JUnit file (atomically)."""
    path = Path(run_dir) / "summary.json"
    if not path.is_file():
        raise DataError(f"{path} not found: run `ftguard run` (or `ftguard report {run_dir}`) first")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None
    verdict = evaluate(summary, max_drop, min_gain, methods)
    write_verdict(run_dir, verdict, junit, json_path)
    return verdict
