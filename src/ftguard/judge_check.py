"""`ftguard judge-check`: measure a judge against human labels (accuracy, Cohen's kappa, confusion matrix).

    ftguard judge-check --judge act_classifier --labels src/ftguard/assets/calibration/proficiency.jsonl
    ftguard judge-check --judge llm --set model=gpt-4o --labels .../safety.jsonl

A labels file is JSONL, one real response per line (see assets/calibration/RUBRIC.md): `id`, `probe`,
`item_id`, `messages`, `reference`, `meta`, `response`, `label`. The probe named in the rows says what is
graded (its category and, for the llm judge, its rubric); the judge says which labels exist and what each
scores (its declared `labels`, or the probe's rubric for the llm judge), so a new probe or judge needs no
edit here. The verdict is compared with the human label on the *pass/fail* scale the report uses, and, when
the judge gives more than two labels, on its labels as well. A judge error (NaN) is its own class `error`: it
always counts as a disagreement.

`--save` records the result in assets/calibration/agreement.json; each run copies the records of the judges it
uses into its manifest, and the report prints them next to the numbers they produced.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftguard.calibration import AGREEMENT_FILE, CALIBRATION_DIR, save
from ftguard.errors import DataError
from ftguard.judges.base import PASS_THRESHOLD
from ftguard.report.compare import cohen_kappa
from ftguard.results import read_jsonl

REQUIRED = ("id", "probe", "item_id", "messages", "meta", "response", "label")
__all__ = ["AGREEMENT_FILE", "CALIBRATION_DIR", "check", "cohen_kappa", "confusion", "load_labels", "save_agreement"]


def load_labels(path: str | Path, labels: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Checked rows of a labels file (one probe per file); DataError names file:line for each problem.

    `labels`: the labels a row may carry (the judge's); default those of the probe's default judge."""
    from ftguard.registry import JUDGES, PROBES, load_plugins

    load_plugins()
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: labels file not found")
    rows, probes = [], set()
    for lineno, row in read_jsonl(path):
        missing = [k for k in REQUIRED if k not in row]
        if missing:
            raise DataError(f"{path}:{lineno}: missing key(s) {missing}; a labels row needs {list(REQUIRED)}")
        if row["probe"] not in PROBES.names():
            raise DataError(f"{path}:{lineno}: unknown probe {row['probe']!r}; one of {PROBES.names()}")
        probes.add(row["probe"])
        rows.append({**row, "_line": lineno})
    if not rows:
        raise DataError(f"{path}: no labelled rows")
    if len(probes) > 1:
        raise DataError(f"{path}: rows of several probes {sorted(probes)}; keep one probe per labels file")
    if labels is None:
        probe = PROBES.create(rows[0]["probe"], n=1)
        labels = list(JUDGES.create(probe.default_judge).for_probe(probe).labels or {})
    for r in rows:
        if r["label"] not in labels:
            raise DataError(f"{path}:{r['_line']}: label {r['label']!r} is not one of {list(labels)}")
    return rows


def label_items(rows: Sequence[dict[str, Any]]) -> list[Any]:
    """The probe items that labels rows (from `load_labels`) were answered to, in the same order."""
    from ftguard.probes.base import ProbeItem

    return [ProbeItem(r["item_id"], r["messages"], r.get("reference"), r["meta"]) for r in rows]


def _probe_of(path: str | Path) -> str:
    for lineno, row in read_jsonl(Path(path)) if Path(path).is_file() else ():
        if "probe" not in row:
            raise DataError(f"{path}:{lineno}: missing key(s) ['probe']; a labels row needs {list(REQUIRED)}")
        return str(row["probe"])
    raise DataError(f"{path}: labels file not found" if not Path(path).is_file() else f"{path}: no labelled rows")


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
    lines = [f"{corner:<18}" + "".join(f"{c:>{w}}" for c in classes)]
    lines += [f"{h:<18}" + "".join(f"{v:>{w}}" for v in row) for h, row in zip(classes, m, strict=True)]
    return "\n".join(lines)


def check(judge_name: str, labels_path: str | Path, params: dict[str, Any] | None = None,
          show: int = 20) -> tuple[dict[str, Any], str]:
    """Run the judge on the labelled rows; (result record, printable text)."""
    from ftguard.registry import JUDGES, PROBES

    probe_name = _probe_of(labels_path)
    probe = PROBES.create(probe_name, n=1)  # what is graded: category, rubrics (the items come from the file)
    judge = JUDGES.create(judge_name, **(params or {})).for_probe(probe)
    labels = list(judge.labels or {})
    rows = load_labels(labels_path, labels)
    items = label_items(rows)
    t0 = time.perf_counter()
    verdicts = judge(items, [r["response"] for r in rows])
    seconds = time.perf_counter() - t0
    human2 = ["pass" if judge.score_of(r["label"], it) >= PASS_THRESHOLD else "fail" for r, it in zip(rows, items)]
    judge2 = ["error" if v.failed else ("pass" if v.score >= PASS_THRESHOLD else "fail") for v in verdicts]
    classes2 = ["pass", "fail"] + (["error"] if "error" in judge2 else [])
    res: dict[str, Any] = {
        "judge": judge_name, "probe": probe_name, "version": judge.version, "params": params or {},
        "labels": str(labels_path), "category": probe.category, "n": len(rows), "errors": judge2.count("error"),
        "accuracy": sum(h == j for h, j in zip(human2, judge2, strict=True)) / len(rows),
        "kappa": cohen_kappa(human2, judge2), "confusion": confusion(human2, judge2, classes2),
        "classes": classes2, "seconds": round(seconds, 2), "date": time.strftime("%Y-%m-%d")}
    passing = ", ".join(judge.passing()) or "item-dependent"
    text = [f"judge {judge_name} (v{judge.version}) vs {len(rows)} human labels in {labels_path} "
            f"(probe {probe_name}, {probe.category})",
            f"pass/fail (pass = {passing}): accuracy {res['accuracy']:.3f}   Cohen's kappa {_k(res['kappa'])}   "
            f"judge errors {res['errors']}   ({seconds:.1f} s)", _table(res["confusion"], classes2)]
    if len(labels) > 2 and {v.label for v in verdicts} <= set(labels):
        human_l, judge_l = [r["label"] for r in rows], [v.label for v in verdicts]
        res.update(accuracy_multi=sum(h == j for h, j in zip(human_l, judge_l, strict=True)) / len(rows),
                   kappa_multi=cohen_kappa(human_l, judge_l), confusion_multi=confusion(human_l, judge_l, labels))
        text += [f"{len(labels)} labels: accuracy {res['accuracy_multi']:.3f}   Cohen's kappa {_k(res['kappa_multi'])}",
                 _table(res["confusion_multi"], labels)]
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
    """Record one judge's measured agreement on one probe for the runs that use it."""
    save(res, path)
