"""Two subjects on the same items: the base rows of two finished runs of one config that differ only in
`model.name_or_path` (e.g. the aligned embedded subject against the unaligned one), compared probe by probe and per
subset with paired 95% bootstrap CIs (the report's statistics, ftguard.report.compare).

    ftguard run configs/quick.yaml                                                      # aligned (the default)
    ftguard run configs/quick.yaml model.name_or_path=embedded:smollm2-135m-instruct output_dir=runs/quick_unaligned
    python benchmarks/compare_subjects.py runs/quick_unaligned runs/quick --names unaligned aligned
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ftguard.report.compare import index_rows, paired_stats, score_stats


def load(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines() if x.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("first", type=Path)
    ap.add_argument("second", type=Path)
    ap.add_argument("--names", nargs=2, default=["first", "second"])
    ap.add_argument("--model", default="base", help="which model of each run (default: its base)")
    ap.add_argument("--bootstrap", type=int, default=2000)
    args = ap.parse_args()
    a, b = (index_rows([r for r in load(p) if r["model"] == args.model]) for p in (args.first, args.second))
    keys = []
    for (model, probe), items in sorted(a.items()):
        keys.append((probe, None, items, b.get((model, probe), {})))
        for sub in sorted({r.get("subset") for r in items.values()} - {None}):
            pick = lambda d, s=sub: {k: r for k, r in d.items() if r.get("subset") == s}  # noqa: E731
            keys.append((probe, sub, pick(items), pick(b.get((model, probe), {}))))
    n1, n2 = args.names
    print(f"| probe | n | {n1} % [95% CI] | {n2} % [95% CI] | {n2} - {n1} points [95% CI] |\n|---|---|---|---|---|")
    for probe, sub, x, y in keys:
        s1, _ = score_stats(x, np.random.default_rng(0), args.bootstrap)
        s2, _ = score_stats(y, np.random.default_rng(0), args.bootstrap)
        d, _ = paired_stats(x, y, np.random.default_rng(0), args.bootstrap)

        def pct(s: dict) -> str:
            return "n/a" if s["mean"] is None else f"{100 * s['mean']:.1f} [{100 * s['ci'][0]:.1f}, {100 * s['ci'][1]:.1f}]"

        delta = "n/a" if d.get("delta") is None else (f"{100 * d['delta']:+.1f} [{100 * d['ci'][0]:+.1f}, "
                                                       f"{100 * d['ci'][1]:+.1f}]")
        print(f"| {probe}{' · ' + sub if sub else ''} | {d['n_paired']} | {pct(s1)} | {pct(s2)} | {delta} |")


if __name__ == "__main__":
    main()
