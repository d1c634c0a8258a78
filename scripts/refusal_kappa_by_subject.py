"""Pass/fail kappa of the refusal judges on each refusal calibration set, pooled and per subject (rows whose model
starts with "aligned_" are the aligned subject's replies), and of the second blind reader against the labels.

    python scripts/refusal_kappa_by_subject.py
"""

from __future__ import annotations

import ftguard.judges  # noqa: F401  (registration)
from ftguard.judge_check import CALIBRATION_DIR, load_labels
from ftguard.probes._refusal import PASSING
from ftguard.probes.base import ProbeItem
from ftguard.registry import JUDGES
from ftguard.report.compare import cohen_kappa

SUBJECTS = {"pooled": lambda r: True, "aligned subject": lambda r: r["model"].startswith("aligned_"),
            "unaligned subject": lambda r: not r["model"].startswith("aligned_")}


def kappas(rows: list[dict], verdicts: list[bool]) -> str:
    human = [r["label"] == PASSING[r["meta"]["expected"]] for r in rows]
    out = []
    for name, keep in SUBJECTS.items():
        idx = [i for i, r in enumerate(rows) if keep(r)]
        k = cohen_kappa([human[i] for i in idx], [verdicts[i] for i in idx])
        out.append(f"{name} n={len(idx)} kappa {'undefined' if k is None else f'{k:.3f}'}")
    return " | ".join(out)


def main() -> None:
    for probe in ("harmful_refusal", "xstest"):
        rows = load_labels(CALIBRATION_DIR / f"{probe}.jsonl")
        items = [ProbeItem(r["item_id"], r["messages"], r.get("reference"), r["meta"]) for r in rows]
        for name in ("refusal_classifier", "refusal_keywords"):
            verdicts = [v.score >= 0.5 for v in JUDGES.create(name).fn(items, [r["response"] for r in rows])]
            print(f"{probe:16s} {name:19s} {kappas(rows, verdicts)}")
        by_id = {r["id"]: r for r in rows}
        second = load_labels(CALIBRATION_DIR / "second_reader" / f"{probe}.jsonl")
        print(f"{probe:16s} {'second reader':19s} "
              f"{kappas([by_id[r['id']] for r in second], [r['label'] == PASSING[r['meta']['expected']] for r in second])}")


if __name__ == "__main__":
    main()
