"""Training wall time of each method, side by side in one process, on the same data and anchors.

    python benchmarks/train_time.py                                   # lora, guard, full of configs/quick.yaml
    python benchmarks/train_time.py --methods lora guard --steps 8 --rounds 2

Each method trains through `ftguard.pipeline.train_method`, exactly as in `ftguard run`, from freshly loaded
base weights into a temporary folder. Per method it prints the whole training call's wall time (for guard
this includes its set-up: one pass over the anchors for the KL targets and the activation covariances, and
the eigendecompositions), the seconds per optimizer step as the trainer measured them, and both as ratios
to LoRA. The anchor conversations (the base model's answers to anchor prompts) are generated once per study
and shared by every method that uses them; their cost is printed on its own line. With `--rounds 2` the
methods alternate (lora, guard, lora, guard, ...) so slow drift of the machine's speed hits both arms.
Run nothing else on the machine meanwhile: on 2 cores any other process shows up in these numbers.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "quick.yaml")
    ap.add_argument("--methods", nargs="+", default=["lora", "guard", "full"], help="method labels in the config")
    ap.add_argument("--steps", type=int, default=None, help="override train.steps")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--cache-dir", type=Path, default=ROOT / "runs" / "tradeoff" / "cache",
                    help="generation cache (the anchor answers are reused from here when present)")
    args = ap.parse_args()

    from ftguard.anchoring import anchor_conversations
    from ftguard.config import load_config
    from ftguard.data import load_train_conversations
    from ftguard.evaluation import LazyModel
    from ftguard.models import load_model, model_fingerprint
    from ftguard.pipeline import build_methods, train_method

    with tempfile.TemporaryDirectory() as tmp:
        overrides = [f"output_dir={tmp}"] + ([f"train.steps={args.steps}"] if args.steps else [])
        cfg = load_config(args.config, overrides)
        specs = {m.label: m for m in cfg.methods}
        missing = [m for m in args.methods if m not in specs]
        if missing:
            raise SystemExit(f"{args.config}: no method labelled {missing}; it has {list(specs)}")
        convs = load_train_conversations(cfg)
        methods = build_methods(cfg)
        base_fp = model_fingerprint(cfg.model)
        t0 = time.perf_counter()
        anchors = anchor_conversations(cfg, "train", cfg.anchors.n, base_fp, LazyModel(lambda: load_model(cfg.model)),
                                       args.cache_dir)
        anchor_s = time.perf_counter() - t0
        wall: dict[str, list[float]] = {m: [] for m in args.methods}
        step: dict[str, list[float]] = {m: [] for m in args.methods}
        for r in range(args.rounds):
            for label in args.methods:
                timings: dict[str, float] = {}
                t0 = time.perf_counter()
                out = train_method(cfg.model_copy(update={"output_dir": Path(tmp) / f"r{r}"}), specs[label],
                                   methods[label], f"bench-{label}", convs, timings, lambda: anchors)
                wall[label].append(time.perf_counter() - t0)
                step[label].append(out["info"]["seconds_per_step"] or float("nan"))
                del out
                print(f"round {r} {label}: {wall[label][-1]:.1f} s, {step[label][-1]:.2f} s/step", flush=True)

    steps = cfg.train.steps
    ref_wall = statistics.mean(wall["lora"]) if "lora" in wall else None
    ref_step = statistics.mean(step["lora"]) if "lora" in step else None
    print(f"\n{args.config.name}: {steps} steps, batch {cfg.train.batch_size}, {len(convs)} training conversations, "
          f"{len(anchors)} anchor conversations ({anchor_s:.1f} s to build or read, shared by every method)")
    print(f"{'method':<12}{'train wall s':>14}{'s/step':>9}{'wall ×LoRA':>12}{'s/step ×LoRA':>14}")
    for label in args.methods:
        w, s = statistics.mean(wall[label]), statistics.mean(step[label])
        rw = f"{w / ref_wall:.2f}" if ref_wall else "-"
        rs = f"{s / ref_step:.2f}" if ref_step else "-"
        print(f"{label:<12}{w:>14.1f}{s:>9.2f}{rw:>12}{rs:>14}")


if __name__ == "__main__":
    main()
