"""Export real responses of a finished run as an *unlabelled* calibration set, one JSONL per axis.

    python scripts/make_calibration_set.py runs/tradeoff/seed0 --models base full lora --out /tmp/calib

Each row carries what a reader (and a judge) needs: the prompt messages, the reference, the judge inputs
(`meta`: gold acts, the statement, ...) and the response, but no judge verdict, so labelling stays blind.
Rows are shuffled (seeded) so models are interleaved. Label them against
src/ftguard/assets/calibration/RUBRIC.md, add "label" and "note", and save next to the rubric.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from ftguard.config import load_config
from ftguard.pipeline import build_probe_runs

AXES = {"proficiency": "sgd_next_turn", "safety": "toxigen_counter", "knowledge": "dolly_qa"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--models", nargs="+", default=["base", "full", "lora"])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    cfg = load_config(args.run / "config.yaml")
    items = {(pr.probe.name, it.id): it for pr in build_probe_runs(cfg) for it in pr.probe.items}
    rows = [json.loads(line) for line in (args.run / "results.jsonl").read_text().splitlines()]
    args.out.mkdir(parents=True, exist_ok=True)
    for axis, probe in AXES.items():
        out = []
        for r in rows:
            if r["probe"] != probe or r["model"] not in args.models:
                continue
            it = items[(probe, r["item_id"])]
            out.append({"id": f"{r['model']}/{r['item_id']}", "probe": probe, "item_id": r["item_id"],
                        "model": r["model"], "messages": it.messages, "reference": it.reference,
                        "meta": it.meta, "response": r["response"]})
        random.Random(args.seed).shuffle(out)
        path = args.out / f"{axis}.unlabelled.jsonl"
        path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in out))
        print(f"{path}: {len(out)} rows")


if __name__ == "__main__":
    main()
