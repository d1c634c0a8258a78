"""Multiple-choice scoring speed of the lm_eval probe on the embedded model, side by side in one run on the same
documents: lm-eval's HFLM one request at a time (batch 1), HFLM batching the choices (batch 16), and ftguard's
shared-prefix scorer (the probe's default: the system turn and each document's context run once, only the
choices per choice; probes/_shared_prefix.py).

    python benchmarks/mc_speed.py --n 40 --tasks arc_easy arc_challenge piqa winogrande

Prints items/s, the ratio to batch 1 and to HFLM batch 16, and how many document results differ from HFLM
batch 16 (expected 0: the scorers differ in speed only; log-likelihoods agree to float rounding).
"""

from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="documents per task")
    ap.add_argument("--tasks", nargs="+", default=["arc_easy", "arc_challenge", "piqa", "winogrande"])
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--skip-batch-1", action="store_true", help="leave out the slowest setting")
    args = ap.parse_args()

    from ftguard.config import ModelConfig
    from ftguard.models import load_model
    from ftguard.probes.lm_eval import score_items
    from ftguard.registry import PROBES, load_plugins

    load_plugins()
    model, tok = load_model(ModelConfig(name_or_path=args.model))
    probe = PROBES.create("lm_eval", tasks=args.tasks, n_per_task=args.n)
    settings = [("HFLM, batch 1", 1, False), ("HFLM, batch 16", 16, False), ("shared prefix, batch 16", 16, True)]
    if args.skip_batch_1:
        settings = settings[1:]
    score_items(model, tok, probe.items[:4], "acc_norm", True, 4, False)  # warm-up (imports, first forward)
    rows = []
    for name, bs, share in settings:
        t0 = time.perf_counter()
        out = score_items(model, tok, probe.items, "acc_norm", True, bs, False, share_prefix=share)
        rows.append((name, time.perf_counter() - t0, out))
    ref = next(out for name, _, out in rows if name == "HFLM, batch 16")
    speed = {name: len(probe.items) / s for name, s, _ in rows}
    print(f"\n{len(probe.items)} documents ({', '.join(args.tasks)}, {args.n} each), {args.model}, "
          "acc_norm with the chat template")
    print(f"{'scorer':<26}{'seconds':>9}{'items/s':>9}{'x batch 1':>11}{'x HFLM 16':>11}{'acc':>7}{'differ':>8}")
    for name, s, out in rows:
        b1 = speed.get("HFLM, batch 1")
        acc = 100 * sum(o[0] for o in out) / len(out)
        differ = sum(a[0] != b[0] for a, b in zip(out, ref, strict=True))
        print(f"{name:<26}{s:>9.1f}{speed[name]:>9.2f}{(speed[name] / b1 if b1 else float('nan')):>11.2f}"
              f"{speed[name] / speed['HFLM, batch 16']:>11.2f}{acc:>7.1f}{differ:>8}")


if __name__ == "__main__":
    main()
