"""`ftguard judge-check`: measure a judge against human labels (accuracy, Cohen's kappa, confusion matrix).

    ftguard judge-check --judge act_classifier --labels src/ftguard/assets/calibration/proficiency.jsonl
    ftguard judge-check --judge llm --set model=gpt-4o --labels .../safety.jsonl

A labels file is JSONL, one real response per line (see assets/calibration/RUBRIC.md): `id`, `probe`,
`item_id`, `messages`, `reference`, `meta`, `response`, `label`. The judge scores every row as it would in a
run; its verdict is compared with the label on the *pass/fail* scale the report uses (safety: pass =
`counters`), and, for safety judges that give the three levels, on counters/neutral/agrees as well. A judge
error (NaN) is its own class `error`: it always counts as a disagreement.

`--save` records the result in assets/calibration/agreement.json, which the report reads to print each judge's
measured agreement next to the numbers it produced.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import ftguard
from ftguard.errors import DataError
from ftguard.report.compare import cohen_kappa
from ftguard.results import read_jsonl

CALIBRATION_DIR = Path(ftguard.__file__).parent / "assets" / "calibration"
AGREEMENT_FILE = CALIBRATION_DIR / "agreement.json"
CATEGORY = {"sgd_next_turn": "proficiency", "toxigen_counter": "safety", "dolly_qa": "knowledge"}
LABELS = {"proficiency": ("correct", "wrong"), "knowledge": ("correct", "wrong"),
          "safety": ("counters", "neutral", "agrees")}
PASS = {"proficiency": "correct", "knowledge": "correct", "safety": "counters"}
REQUIRED = ("id", "probe", "item_id", "messages", "meta", "response", "label")


def load_labels(path: str | Path) -> list[dict[str, Any]]:
    """Checked rows of a labels file; DataError names file:line for each problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: labels file not found")
    rows, probes = [], set()
    for lineno, row in read_jsonl(path):
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise DataError(f"{path}:{lineno}: missing key(s) {missing}; a labels row needs {list(REQUIRED)}")
        cat = CATEGORY.get(row["probe"])
        if cat is None:
            raise DataError(f"{path}:{lineno}: unknown probe {row['probe']!r}; one of {sorted(CATEGORY)}")
        if row["label"] not in LABELS[cat]:
            raise DataError(f"{path}:{lineno}: label {row['label']!r} is not one of {LABELS[cat]} ({cat})")
        probes.add(row["probe"])
        rows.append({**row, "_line": lineno})
    if not rows:
        raise DataError(f"{path}: no labelled rows")
    if len(probes) > 1:
        raise DataError(f"{path}: rows of several probes {sorted(probes)}; keep one probe per labels file")
    return rows


def confusion(human: Sequence[str], judge: Sequence[str], classes: Sequence[str]) -> list[list[int]]:
    """rows = human label, columns = judge label, in `classes` order."""
    idx = {c: i for i, c in enumerate(classes)}
    m = [[0] * len(classes) for _ in classes]
    for h, j in zip(human, judge, strict=True):
        m[idx[h]][idx[j]] += 1
    return m


def _k(kappa: float | None) -> str:
    return "undefined (one label only)" if kappa is None else f"{kappa:.3f}"


def _table(m: list[list[int]], classes: Sequence[str]) -> str:
    w = max(8, *(len(c) + 1 for c in classes))
    corner = "human \\ judge"
    lines = [f"{corner:<16}" + "".join(f"{c:>{w}}" for c in classes)]
    lines += [f"{h:<16}" + "".join(f"{v:>{w}}" for v in row) for h, row in zip(classes, m, strict=True)]
    return "\n".join(lines)


def check(judge_name: str, labels_path: str | Path, params: dict[str, Any] | None = None,
          show: int = 20) -> tuple[dict[str, Any], str]:
    """Run the judge on the labelled rows; (result record, printable text)."""
    from ftguard.pipeline import load_plugins
    from ftguard.probes.base import ProbeItem
    from ftguard.registry import JUDGES

    load_plugins()
    rows = load_labels(labels_path)
    cat = CATEGORY[rows[0]["probe"]]
    judge = JUDGES.create(judge_name, **(params or {}))
    items = [ProbeItem(r["item_id"], r["messages"], cat, r.get("reference"), r["meta"]) for r in rows]
    t0 = time.perf_counter()
    verdicts = judge(items, [r["response"] for r in rows])
    seconds = time.perf_counter() - t0
    ok = PASS[cat]
    fail = "fail"
    human2 = ["pass" if r["label"] == ok else fail for r in rows]
    judge2 = ["error" if v.score != v.score else ("pass" if v.score == 1.0 else fail) for v in verdicts]
    classes2 = ["pass", fail] + (["error"] if "error" in judge2 else [])
    res: dict[str, Any] = {
        "judge": judge_name, "version": judge.version, "params": params or {}, "labels": str(labels_path),
        "category": cat, "n": len(rows), "errors": judge2.count("error"),
        "accuracy": sum(h == j for h, j in zip(human2, judge2, strict=True)) / len(rows),
        "kappa": cohen_kappa(human2, judge2), "confusion": confusion(human2, judge2, classes2),
        "classes": classes2, "seconds": round(seconds, 2), "date": time.strftime("%Y-%m-%d")}
    text = [f"judge {judge_name} (v{judge.version}) vs {len(rows)} human labels in {labels_path} ({cat})",
            f"pass/fail (pass = {ok}): accuracy {res['accuracy']:.3f}   Cohen's kappa {_k(res['kappa'])}   "
            f"judge errors {res['errors']}   ({seconds:.1f} s)",
            _table(res["confusion"], [ok, f"not {ok}"] + (["error"] if "error" in judge2 else []))]
    if cat == "safety" and {v.label for v in verdicts} <= set(LABELS["safety"]):
        human3, judge3 = [r["label"] for r in rows], [v.label for v in verdicts]
        res.update(accuracy_3=sum(h == j for h, j in zip(human3, judge3, strict=True)) / len(rows),
                   kappa_3=cohen_kappa(human3, judge3), confusion_3=confusion(human3, judge3, LABELS["safety"]))
        text += [f"three levels: accuracy {res['accuracy_3']:.3f}   Cohen's kappa {_k(res['kappa_3'])}",
                 _table(res["confusion_3"], LABELS["safety"])]
    per_model: dict[str, list[bool]] = {}
    for r, h, j in zip(rows, human2, judge2, strict=True):
        per_model.setdefault(r.get("model", "?"), []).append(h == j)
    res["per_model_accuracy"] = {m: sum(v) / len(v) for m, v in per_model.items()}
    text.append("per model: " + "  ".join(f"{m} {a:.3f} (n={len(per_model[m])})"
                                         for m, a in res["per_model_accuracy"].items()))
    dis = [(r, v) for r, h, j, v in zip(rows, human2, judge2, verdicts, strict=True) if h != j]
    text.append(f"\n{len(dis)} disagreement(s)" + (f", first {show}:" if len(dis) > show else ":"))
    for r, v in dis[:show]:
        resp = " ".join(r["response"].split())
        text.append(f"- line {r['_line']} [{r['id']}] human={r['label']} judge={v.label or v.score}\n"
                    f"    response: {resp[:220]}{'…' if len(resp) > 220 else ''}\n"
                    f"    judge: {v.explanation[:220]}")
    return res, "\n".join(text)


def save_agreement(res: dict[str, Any], path: Path = AGREEMENT_FILE) -> None:
    """Record one judge's measured agreement (keyed by judge name) for the report."""
    data = json.loads(path.read_text()) if path.exists() else {}
    keep = ("judge", "version", "labels", "category", "n", "errors", "accuracy", "kappa", "accuracy_3", "kappa_3",
            "date")
    data[res["judge"]] = {k: res[k] for k in keep if k in res}
    data[res["judge"]]["labels"] = Path(res["labels"]).name
    path.write_text(json.dumps(dict(sorted(data.items())), indent=2) + "\n")


def known_agreement(path: Path = AGREEMENT_FILE) -> dict[str, dict[str, Any]]:
    """judge name -> its recorded agreement (empty when none was saved)."""
    return json.loads(path.read_text()) if path.exists() else {}
