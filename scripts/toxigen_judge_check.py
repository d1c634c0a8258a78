"""The ToxiGen counter-speech judges on the safety calibration set: pooled, per subject, per group, and a
held-out-group check (issue "refusal", item 7), plus the second blind reader's agreement.

    python scripts/toxigen_judge_check.py
    python scripts/toxigen_judge_check.py --holdout middle_east muslim   # groups to hold out (default: HOLDOUT)

Held-out-group check: `safety_classifier` is refitted (same features, same l2 choice by item-grouped CV as
scripts/train_judge_classifiers.py) on the training labels and ToxiGen pairs *without* any row about the held-out
groups, and scored on the calibration rows about those groups only; the shipped weights are not touched. The rules of
`counter_speech` are hand-written (on training labels of every group), so they have no held-out-group refit; their
numbers on the same rows are printed beside. Pass = `counters` (the probe's passing label).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import ftguard.judges  # noqa: F401  (registration)
from ftguard.judge_check import CALIBRATION_DIR, label_items, load_labels
from ftguard.registry import JUDGES
from ftguard.report.compare import cohen_kappa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from refusal_kappa_by_subject import SUBJECTS  # noqa: E402  (the same pooled / aligned / unaligned split)

# the groups of the aligned subject's calibration rows (scripts/export_for_labelling.py --calibration-groups)
HOLDOUT = ["middle_east", "muslim", "chinese", "black", "asian", "native_american", "mental_disability", "latino"]


def kappa_line(rows: list[dict], verdicts: list[str]) -> str:
    if not rows:
        return "n=  0"
    k2 = cohen_kappa([r["label"] == "counters" for r in rows], [v == "counters" for v in verdicts])
    k3 = cohen_kappa([r["label"] for r in rows], verdicts)
    acc = sum(r["label"] == v for r, v in zip(rows, verdicts, strict=True)) / len(rows)
    f = lambda k: "undef" if k is None else f"{k:.3f}"  # noqa: E731
    return f"n={len(rows):3d}  pass/fail kappa {f(k2)}  3-label kappa {f(k3)}  3-label accuracy {acc:.3f}"


def verdicts_of(judge: str, rows: list[dict], **params: str) -> list[str]:
    return [v.label for v in JUDGES.create(judge, **params).fn(label_items(rows), [r["response"] for r in rows])]


def report(title: str, rows: list[dict], verdicts: list[str]) -> None:
    for name, keep in SUBJECTS.items():
        idx = [i for i, r in enumerate(rows) if keep(r)]
        print(f"{title:42s} {name:18s} {kappa_line([rows[i] for i in idx], [verdicts[i] for i in idx])}")


def refit_without(groups: set[str], out: Path) -> None:
    import torch
    import train_judge_classifiers as T

    from ftguard.judges.safety_classifier import SAFETY_LABELS, safety_features

    rows = [r for r in load_labels(T.TRAIN_DIR / "safety.jsonl") if r["meta"].get("group") not in groups]
    pairs = [p for p in T.toxigen_pairs(150, 0) if p[2] not in groups]
    x = safety_features([r["response"] for r in rows] + [p[0] for p in pairs],
                        [r["meta"]["statement"] for r in rows] + [p[1] for p in pairs],
                        [r["meta"].get("group", "") for r in rows] + [p[2] for p in pairs])
    torch.manual_seed(0)
    T.train("safety_classifier (held-out groups removed)", x, [r["label"] for r in rows] + [p[3] for p in pairs],
            SAFETY_LABELS, [1.0] * len(rows) + [0.5] * len(pairs), [True] * len(rows) + [False] * len(pairs), out,
            {"trained_on": "held-out-group check"}, groups=[r["item_id"] for r in rows] + [f"pair{i}" for i in
                                                                                    range(len(pairs))])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--holdout", nargs="+", default=HOLDOUT)
    args = ap.parse_args()
    rows = load_labels(CALIBRATION_DIR / "safety.jsonl")
    shipped_verdicts = {judge: verdicts_of(judge, rows) for judge in ("counter_speech", "safety_classifier")}
    for judge, verdicts in shipped_verdicts.items():
        report(f"{judge} (shipped)", rows, verdicts)

    held_idx = [i for i, r in enumerate(rows) if r["meta"].get("group") in set(args.holdout)]
    held = [rows[i] for i in held_idx]
    with tempfile.TemporaryDirectory() as tmp:
        weights = Path(tmp) / "check.safetensors"
        refit_without(set(args.holdout), weights)
        report("safety_classifier refit, held-out groups", held,
               verdicts_of("safety_classifier", held, weights=str(weights)))
    for judge, title in (("safety_classifier", "safety_classifier (shipped), same rows"),
                         ("counter_speech", "counter_speech, same rows")):
        report(title, held, [shipped_verdicts[judge][i] for i in held_idx])

    second_path = CALIBRATION_DIR / "second_reader" / "safety.jsonl"
    if second_path.is_file():
        by_id = {r["id"]: r for r in rows}
        second = load_labels(second_path)
        report("second blind reader vs the labels", [by_id[r["id"]] for r in second], [r["label"] for r in second])


if __name__ == "__main__":
    main()
