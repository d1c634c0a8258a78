"""Export real replies of finished runs as *unlabelled* rows for blind labelling, split by item into a calibration
part and a training part (an item's replies never sit in both), deduplicated per (item, reply).

    python scripts/export_for_labelling.py runs/calgen --probes harmful_refusal xstest --out /tmp/label \\
        --calibration-per-model 55

Rows carry what a reader needs (messages, reference, meta, response) and the model's label, never a judge's
verdict. An item belongs to the calibration part when sha1("calibration/" + item id) is even, whatever run or
model it comes from, so new replies to the same items (another model, the aligned subject) land on the same side.
Label them against src/ftguard/assets/calibration/RUBRIC.md (LABELLING.md has the instructions).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from ftguard.calibration import part_of


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, nargs="+", help="finished run folders (results.jsonl, config.yaml)")
    ap.add_argument("--probes", nargs="+", required=True)
    ap.add_argument("--models", nargs="*", help="default: every model in the results")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--calibration-per-model", type=int, default=55, help="calibration rows kept per model")
    ap.add_argument("--exclude", type=Path, nargs="*", default=[], help="labelled files whose (item, reply) to skip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--calibration-groups", nargs="+", help="split by meta.group instead of by item hash: items of "
                    "these groups are the calibration part, the rest training (a held-out-group check)")
    ap.add_argument("--tag-runs", action="store_true", help="append each run folder's name to the model name, so "
                    "several seeds of one method get distinct row ids")
    ap.add_argument("--model-prefix", default="", help='prepended to each model name and row id, e.g. "aligned_" '
                    "for another subject's replies (scripts/refusal_kappa_by_subject.py splits by it)")
    args = ap.parse_args()

    seen = set()
    for path in args.exclude:
        for line in path.read_text().splitlines():
            r = json.loads(line)
            seen.add((r["item_id"], r["response"]))
    from ftguard.config import load_config
    from ftguard.pipeline import build_probe_runs

    rows, items = [], {}
    for run in args.runs:
        run_rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines() if x.strip()]
        for r in run_rows:
            r["model"] += f"_{run.name}" if args.tag_runs else ""
        rows += run_rows
        cfg = load_config(run / "config.yaml", ["output_dir=/tmp/ftguard-export-unused"])
        items.update({(pr.probe.name, it.id): it for pr in build_probe_runs(cfg) for it in pr.probe.items})
    args.out.mkdir(parents=True, exist_ok=True)
    for probe in args.probes:
        parts: dict[str, dict[str, list[dict]]] = {"calibration": {}, "train": {}}
        for r in rows:
            if r["probe"] != probe or (args.models and r["model"] not in args.models):
                continue
            if (r["item_id"], r["response"]) in seen:
                continue
            seen.add((r["item_id"], r["response"]))
            it = items[(probe, r["item_id"])]
            model = args.model_prefix + r["model"]
            row = {"id": f"{model}/{r['item_id']}", "probe": probe, "item_id": r["item_id"], "model": model,
                   "messages": it.messages, "reference": it.reference, "meta": it.meta, "response": r["response"]}
            part = (part_of(r["item_id"]) if not args.calibration_groups
                    else "calibration" if it.meta.get("group") in args.calibration_groups else "train")
            parts[part].setdefault(model, []).append(row)
        for part, by_model in parts.items():
            out = []
            for model, model_rows in sorted(by_model.items()):
                random.Random(args.seed).shuffle(model_rows)
                out += model_rows[: args.calibration_per_model] if part == "calibration" else model_rows
            random.Random(args.seed).shuffle(out)
            path = args.out / f"{probe}.{part}.unlabelled.jsonl"
            path.write_text("".join(json.dumps(o, ensure_ascii=False) + "\n" for o in out))
            counts = {m: sum(o["model"] == m for o in out) for m in sorted(by_model)}
            print(f"{path}: {len(out)} rows {counts}")


if __name__ == "__main__":
    main()
