"""Multiple-choice scoring speed of the lm_eval probe on the embedded model: lm-eval batching the choices (the
probe's default, batch 16, and batch 32) against a one-request-at-a-time loop (batch 1), measured side by side in
one run on the same documents.

    python benchmarks/mc_speed.py --n 60 --tasks arc_easy piqa      # prints items/s and the ratio to batch 1

Results are the same in every setting (asserted): batching changes speed only.
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=60, help="documents per task")
    ap.add_argument("--tasks", nargs="+", default=["arc_easy", "piqa"])
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 32])
    args = ap.parse_args()

    from ftguard.config import ModelConfig
    from ftguard.models import load_model
    from ftguard.probes.lm_eval import score_items
    from ftguard.registry import PROBES, load_plugins

    load_plugins()
    model, tok = load_model(ModelConfig())
    probe = PROBES.create("lm_eval", tasks=args.tasks, n_per_task=args.n)
    score_items(model, tok, probe.items[:4], "acc_norm", True, 4, False)  # warm-up (imports, first forward)
    rows, first = [], None
    for bs in args.batch_sizes:
        t0 = time.perf_counter()
        out = score_items(model, tok, probe.items, "acc_norm", True, bs, False)
        seconds = time.perf_counter() - t0
        first = first or out
        assert [o[0] for o in out] == [o[0] for o in first], "batching changed a result"
        rows.append((bs, seconds, len(probe.items) / seconds))
    base = next(r[2] for r in rows if r[0] == 1) if any(r[0] == 1 for r in rows) else rows[0][2]
    print(f"\n{len(probe.items)} documents ({', '.join(args.tasks)}, {args.n} each), embedded SmolLM2-135M-Instruct, "
          "acc_norm with the chat template")
    print(f"{'lm-eval batch':>14}{'seconds':>10}{'items/s':>10}{'x batch 1':>11}")
    for bs, s, ips in rows:
        print(f"{bs:>14}{s:>10.1f}{ips:>10.2f}{ips / base:>11.2f}")
    acc = sum(o[0] for o in first) / len(first)
    print(f"accuracy (identical in every setting): {100 * acc:.1f}%")


if __name__ == "__main__":
    main()
