"""Train the learnt offline judges `safety_classifier` and `knowledge_classifier` (ftguard/judges/safety_classifier.py, knowledge_classifier.py).

    python scripts/train_judge_classifiers.py     # writes src/ftguard/assets/judges/{safety,knowledge}_classifier.safetensors

Training data (never the calibration sets that `ftguard judge-check` measures the judges on):
- src/ftguard/assets/calibration/train/safety.jsonl, knowledge.jsonl: real responses of models that are not in
  the calibration sets (other methods and seeds of benchmarks/tradeoff.py), labelled by reading against
  RUBRIC.md, in the same format as the calibration files;
- safety only: ToxiGen statements outside the probe pool, weight 0.5: a hate statement given as the reply to
  another hate statement about the same group is `agrees`; a neutral statement about the group is `neutral`.
Classes are weighted to balance them (few replies counter a statement; few small-model answers are correct).
The L2 strength of each judge is chosen from {0.01, 0.1, 1} by 5-fold cross-validated pass/fail kappa on these
*training* labels (balanced vs plain weights and embedding vs lexical-only features for safety were chosen the same
way earlier); the calibration sets play no part. Prints the cross-validated accuracy and kappa of every candidate.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from ftguard.data import load_toxigen
from ftguard.judge_check import CALIBRATION_DIR, label_items, load_labels
from ftguard.judges import _linear
from ftguard.judges.knowledge_classifier import (
    KNOWLEDGE_LABELS,
    KNOWLEDGE_PATH,
    knowledge_features,
)
from ftguard.judges.safety_classifier import SAFETY_LABELS, SAFETY_PATH, safety_features
from ftguard.probes.toxigen_counter import anchor_pool
from ftguard.report.compare import cohen_kappa

TRAIN_DIR = CALIBRATION_DIR / "train"


def toxigen_pairs(n: int, seed: int) -> list[tuple[str, str, str, str]]:
    """(reply, statement, group, label) built from statements the probe never uses."""
    rng = random.Random(seed)
    pool = anchor_pool()
    hate = [r for r in pool if r["label"] == "hate"]
    neutral = [r for r in load_toxigen() if r["label"] == "neutral"]
    by_group: dict[str, list[dict]] = {}
    for r in hate:
        by_group.setdefault(r["group"], []).append(r)
    out = []
    for _ in range(n):
        h = rng.choice(hate)
        others = [r for r in by_group[h["group"]] if r["text"] != h["text"]]
        if others:
            out.append((rng.choice(others)["text"], h["text"], h["group"], "agrees"))
        same = [r for r in neutral if r["group"] == h["group"]]
        if same:
            out.append((rng.choice(same)["text"], h["text"], h["group"], "neutral"))
    return out


def balanced(y: torch.Tensor, w: torch.Tensor, n_classes: int) -> torch.Tensor:
    counts = torch.bincount(y, minlength=n_classes).float().clamp(min=1)
    return w * (len(y) / (n_classes * counts))[y]


def cross_val(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor, real: torch.Tensor, k: int, n_classes: int,
              l2: float, seed: int, passes=None, groups: list[str] | None = None) -> tuple[float, float | None]:
    """(accuracy, pass/fail kappa) on the real (labelled-response) rows, each predicted without its fold.
    `groups` (e.g. item ids): rows of one group share a fold, so replies to an item are never scored by a
    classifier trained on other replies to the same item (the calibration set holds other items)."""
    idx = torch.nonzero(real).flatten()
    perm = idx[torch.randperm(len(idx), generator=torch.Generator().manual_seed(seed))]
    if groups is not None:
        names = sorted({groups[i] for i in idx.tolist()})
        random.Random(seed).shuffle(names)
        fold_of = {g: j % k for j, g in enumerate(names)}
    pred: dict[int, int] = {}
    for f in range(k):
        test = perm[f::k] if groups is None else torch.tensor([i for i in idx.tolist() if fold_of[groups[i]] == f])
        mask = torch.ones(len(y), dtype=torch.bool)
        mask[test] = False
        params = _linear.fit(x[mask], y[mask], n_classes, w[mask], l2=l2)
        pred.update(zip(test.tolist(), _linear.proba(params, x[test]).argmax(1).tolist(), strict=True))
    ids = sorted(pred)
    acc = sum(pred[i] == int(y[i]) for i in ids) / len(ids)
    passes = passes or (lambda i, c: c == 0)  # default: class 0 is the passing label
    return acc, cohen_kappa([passes(i, int(y[i])) for i in ids], [passes(i, pred[i]) for i in ids])


def train(name: str, x: torch.Tensor, labels: list[str], classes: tuple[str, ...], weights: list[float],
          real: list[bool], out: Path, meta: dict, l2_grid: tuple[float, ...] = (0.01, 0.1, 1.0), passes=None,
          groups: list[str] | None = None) -> None:
    y = torch.tensor([classes.index(lab) for lab in labels])
    r = torch.tensor(real)
    w = balanced(y, torch.tensor(weights), len(classes))
    scores = {l2: cross_val(x, y, w, r, 5, len(classes), l2, 0, passes, groups) for l2 in l2_grid}
    for l2, (acc, kap) in scores.items():
        print(f"{name}: l2 {l2:g}: 5-fold CV accuracy {acc:.3f}, pass/fail kappa {kap or 0.0:.3f}")
    l2 = max(l2_grid, key=lambda v: (scores[v][1] or 0.0, scores[v][0]))
    cv, cv_kappa = scores[l2]
    params = _linear.fit(x, y, len(classes), w, l2=l2)
    fit_acc = float((_linear.proba(params, x[r]).argmax(1) == y[r]).float().mean())
    counts = {c: labels.count(c) for c in classes}
    print(f"{name}: {int(r.sum())} labelled responses + {len(labels) - int(r.sum())} ToxiGen pairs; labels {counts}; "
          f"l2 {l2:g}; 5-fold CV on the responses: accuracy {cv:.3f}, pass/fail kappa {cv_kappa:.3f} (fit accuracy {fit_acc:.3f})")
    _linear.save(out, params, {**meta, "classes": list(classes), "cv_accuracy": round(cv, 4), "l2": l2,
                               "cv_kappa": round(cv_kappa or 0.0, 4), "n_train": len(labels)})
    print(f"wrote {out} ({out.stat().st_size / 1e3:.0f} kB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--train-dir", type=Path, default=TRAIN_DIR)
    ap.add_argument("--toxigen-pairs", type=int, default=150)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", choices=["safety", "knowledge", "refusal"], help="train one judge only")
    ap.add_argument("--refusal-extra", type=Path, help="also train refusal_classifier on this folder's "
                    "harmful_refusal.jsonl / xstest.jsonl (e.g. calibration/train_more: labelled, not adopted)")
    ap.add_argument("--refusal-out", type=Path, help="write refusal_classifier's weights here instead of the "
                    "shipped file (a candidate: copy it over the shipped file to judge-check it; not an update of the "
                    "judge)")
    args = ap.parse_args()
    if args.only in (None, "refusal"):
        train_refusal(args.train_dir, args.refusal_extra, args.refusal_out)
    if args.only == "refusal":
        return
    if args.only == "knowledge":
        return train_knowledge(args.train_dir)

    rows = load_labels(args.train_dir / "safety.jsonl")
    pairs = toxigen_pairs(args.toxigen_pairs, args.seed)
    replies = [r["response"] for r in rows] + [p[0] for p in pairs]
    stmts = [r["meta"]["statement"] for r in rows] + [p[1] for p in pairs]
    groups = [r["meta"].get("group", "") for r in rows] + [p[2] for p in pairs]
    x = safety_features(replies, stmts, groups)
    train("safety_classifier", x, [r["label"] for r in rows] + [p[3] for p in pairs], SAFETY_LABELS,
          [1.0] * len(rows) + [0.5] * len(pairs), [True] * len(rows) + [False] * len(pairs), SAFETY_PATH,
          {"trained_on": f"{args.train_dir.name}/safety.jsonl + ToxiGen anchor-pool pairs", "seed": args.seed})

    if args.only is None:
        train_knowledge(args.train_dir)


def train_knowledge(train_dir: Path) -> None:
    rows = load_labels(train_dir / "knowledge.jsonl")
    x = knowledge_features([r["response"] for r in rows], [r["reference"] for r in rows],
                           [r["meta"].get("question", "") for r in rows])
    train("knowledge_classifier", x, [r["label"] for r in rows], KNOWLEDGE_LABELS, [1.0] * len(rows),
          [True] * len(rows), KNOWLEDGE_PATH, {"trained_on": f"{train_dir.name}/knowledge.jsonl"})


def train_refusal(train_dir: Path, extra: Path | None = None, out: Path | None = None) -> None:
    """refusal_classifier on the labelled replies of both refusal probes (their calibration files are not read)."""
    from ftguard.judges.refusal_classifier import PATH as REFUSAL_PATH
    from ftguard.judges.refusal_classifier import features, request_of
    from ftguard.probes._refusal import LABELS, PASSING

    dirs = [train_dir] + ([extra] if extra else [])
    rows = [r for d in dirs for p in ("harmful_refusal", "xstest") for r in load_labels(d / f"{p}.jsonl")]
    items = label_items(rows)
    x = features([r["response"] for r in rows], [request_of(it) for it in items])
    expected = [r["meta"]["expected"] for r in rows]
    train("refusal_classifier", x, [r["label"] for r in rows], LABELS, [1.0] * len(rows), [True] * len(rows),
          out or REFUSAL_PATH,
          {"trained_on": " + ".join(f"{d.name}/harmful_refusal.jsonl + xstest.jsonl" for d in dirs)},
          l2_grid=(0.01, 0.03, 0.1, 0.3, 1.0, 3.0), passes=lambda i, c: LABELS[c] == PASSING[expected[i]],
          groups=[r["item_id"] for r in rows])


if __name__ == "__main__":
    main()
