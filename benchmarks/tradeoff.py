"""Where each fine-tuning method sits on the learning/forgetting trade-off, over several seeds.

    python benchmarks/tradeoff.py                       # 3 seeds, every method in configs/tradeoff.yaml
    python benchmarks/tradeoff.py --seeds 0 --methods full lora guard
    python benchmarks/tradeoff.py --sweep               # + guard's energy / kl_weight sweep
    python benchmarks/tradeoff.py --config configs/aligned.yaml --out runs/aligned_race   # the aligned subject

Each seed is one `ftguard run` (runs/tradeoff/seed<N>, one shared content-addressed cache, so the base
model is evaluated once and an interrupted benchmark resumes). Prints one table: proficiency gain, safety
change, knowledge change (points, seed-averaged, 95% paired-bootstrap CI over items), drift KL(base‖tuned)
on held-out anchor prompts, the change of the reference answers' per-token log-likelihood (knowledge
without a judge), and seconds per training step, all measured side by side in the same run; then the same
change per probe (xstest split into its safe and unsafe parts). Writes OUT/tradeoff.png (category axes,
with the WiSE-FT curve of the LoRA adapter) and OUT/tradeoff_probes.png (one panel per safety and knowledge
probe against proficiency).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
from ftguard.categories import CATEGORIES, RETAINED  # noqa: E402  (the one vocabulary)

SWEEP = [{"name": "guard", "tag": f"guard_e{e}_kl{k}", "energy": e, "kl_weight": k}
         for e in (0.0, 0.8, 0.95) for k in (0.0, 0.5, 2.0) if (e, k) != (0.0, 0.0)]


SPLIT_BY_SUBSET = {"xstest"}  # probes whose parts are separate axes (safe prompts answered, unsafe ones refused)


def run_seed(seed: int, methods: list[str] | None, sweep: bool, out: Path, wise_ft: bool = True,
             steps: int | None = None, config: Path = ROOT / "configs" / "tradeoff.yaml") -> Path:
    from ftguard.config import load_config
    from ftguard.pipeline import run_study

    cfg = load_config(config, [f"seed={seed}", f"output_dir={out / f'seed{seed}'}",
                                                           f"cache_dir={out / 'cache'}"]
                      + ([f"train.steps={steps}"] if steps else []))
    specs = [m for m in cfg.methods if methods is None or m.label in methods]
    if sweep:
        from ftguard.config import MethodSpec

        lora = next(m for m in cfg.methods if m.name == "lora")
        specs += [MethodSpec(lr=lora.lr, rank=16, alpha=32, **s) for s in SWEEP]
    wise = cfg.wise_ft if wise_ft and cfg.wise_ft and any(m.label == cfg.wise_ft.method for m in specs) else None
    run_study(cfg.model_copy(update={"methods": specs, "wise_ft": wise}))
    return out / f"seed{seed}"


def axis_of(r: dict) -> str:
    return f"{r['probe']}:{r['subset']}" if r["probe"] in SPLIT_BY_SUBSET and r.get("subset") else r["probe"]


def item_scores(run: Path, by: str = "category") -> dict[tuple[str, str], dict[str, float]]:
    """(model, category) -> {item key: score} from results.jsonl (judge errors left out); by="probe":
    (model, "category/probe axis") -> {item key: score}."""
    out: dict[tuple[str, str], dict[str, float]] = {}
    for line in (run / "results.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r["score"] is not None:
            key = r["category"] if by == "category" else f"{r['category']}/{axis_of(r)}"
            out.setdefault((r["model"], key), {})[f"{r['probe']}/{r['item_id']}"] = r["score"]
    return out


def probe_table(runs: list[Path], methods: list[str]) -> tuple[list[dict], str]:
    """Seed-averaged change per probe axis (points, 95% CI over items), base level first."""
    scores = [item_scores(r, by="probe") for r in runs]
    axes = list(dict.fromkeys(a for sc in scores for (m, a) in sc if m == "base"))
    base = {a: 100 * float(np.mean([v for sc in scores for v in sc.get(("base", a), {}).values()])) for a in axes}
    rows = [{"method": m, **{a: seed_averaged_delta(scores, m, a) for a in axes}} for m in methods]
    width = {a: max(26, len(a) + 2) for a in axes}
    head = f"{'method':<22}" + "".join(f"{a:>{width[a]}}" for a in axes)
    lines = [head, f"{'base (level)':<22}" + "".join(f"{base[a]:>{width[a]}.1f}" for a in axes), "-" * len(head)]
    for r in rows:
        lines.append(f"{r['method']:<22}" + "".join(f"{r[a][0]:+.1f} [{r[a][1]:+.1f}, {r[a][2]:+.1f}]".rjust(width[a])
                                                     for a in axes))
    return rows, "\n".join(lines)


def pareto_panel(ax, rows: list[dict], prof: dict[str, tuple[float, float, float]], key: str) -> None:  # noqa: ANN001
    """One axis of the trade-off plot: each method's change on `key` against its proficiency change (`prof`),
    with 95% CIs both ways, and the WiSE-FT curve of the LoRA adapter when its points exist."""
    curve = [r for r in rows if r["method"].startswith("lora@")] + [r for r in rows if r["method"] == "lora"]
    if len(curve) > 1:  # a curve only when WiSE-FT points exist
        ax.plot([prof[r["method"]][0] for r in curve], [r[key][0] for r in curve], "--s", color="#888",
                label="WiSE-FT (lora)", zorder=1)
        ax.legend(fontsize=8, loc="lower left", frameon=False)
    for r in rows:
        if r["method"].startswith("lora@"):
            continue
        (x, xl, xh), (y, yl, yh) = prof[r["method"]], r[key]
        ax.errorbar(x, y, xerr=[[x - xl], [xh - x]], yerr=[[y - yl], [yh - y]], fmt="o", capsize=3)
        ax.annotate(r["method"], (x, y), xytext=(5, 5), textcoords="offset points", fontsize=8)
    ax.axhline(0, ls="--", lw=1, color="#999")
    ax.axvline(0, ls="--", lw=1, color="#999")
    ax.set_xlabel("proficiency change (points)")
    ax.set_ylabel(f"{key} change (points)")


def plot_probes(rows: list[dict], prof: dict[str, tuple[float, float, float]], path: Path) -> None:
    """One Pareto panel per non-proficiency probe axis: its change against the proficiency change."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    axes_names = [a for a in rows[0] if a != "method" and not a.startswith("proficiency/")]
    cols = min(3, len(axes_names))
    fig, axs = plt.subplots((len(axes_names) + cols - 1) // cols, cols, figsize=(5 * cols, 4.2 *
                            ((len(axes_names) + cols - 1) // cols)), squeeze=False)
    for ax, name in zip(axs.flat, axes_names, strict=False):
        pareto_panel(ax, rows, prof, name)
    for ax in list(axs.flat)[len(axes_names):]:
        ax.set_visible(False)
    fig.suptitle("Per-probe learning vs forgetting, seed-averaged, 95% CI over items", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def seed_averaged_delta(per_run: list[dict[tuple[str, str], dict[str, float]]], method: str, category: str
                        ) -> tuple[float, float, float]:
    """Mean over seeds of (tuned - base) per item, with a 95% bootstrap CI over items; in points.

    `per_run`: `item_scores` of each seed's run. Each call bootstraps on its own seeded stream, so a cell's CI
    does not depend on which other rows the table holds."""
    per_item: dict[str, list[float]] = {}
    for scores in per_run:
        base, tuned = scores.get(("base", category), {}), scores.get((method, category), {})
        for k in sorted(base.keys() & tuned.keys()):  # sorted: the CI must not depend on hash order
            per_item.setdefault(k, []).append(tuned[k] - base[k])
    if not per_item:
        return (float("nan"),) * 3
    d = np.array([np.mean(v) for v in per_item.values()])
    boots = np.random.default_rng(0).choice(d, size=(2000, len(d))).mean(1)
    return 100 * d.mean(), 100 * np.percentile(boots, 2.5), 100 * np.percentile(boots, 97.5)


def reference_loglik_delta(summaries: list[dict], method: str) -> float:
    """Judge-free knowledge: change of the mean per-token log-likelihood of the human reference answers,
    averaged over the probes that have references and over seeds (nan when no run scored them)."""
    vals = []
    for summary in summaries:
        deltas = summary.get("loglik", {}).get("deltas", {}).get(method, {})
        per_probe = [d["delta"] for d in deltas.values() if d.get("delta") is not None]
        if per_probe:
            vals.append(float(np.mean(per_probe)))
    return float(np.mean(vals)) if vals else float("nan")


def table(runs: list[Path], only: list[str] | None = None) -> tuple[list[dict], str]:
    manifests = [json.loads((r / "manifest.json").read_text()) for r in runs]
    summaries = [json.loads((r / "summary.json").read_text()) for r in runs]
    scores = [item_scores(r) for r in runs]  # read once, not once per method and category
    methods = list(dict.fromkeys(m for x in manifests for m in x["methods"]))  # union, first-seen order
    wise = {r["model"] for run in runs for r in map(json.loads, (run / "results.jsonl").read_text().splitlines())
            if "@" in r["model"]}
    methods += sorted(wise - set(methods))
    if only:  # the named methods (and LoRA's WiSE-FT points when lora is named)
        methods = [m for m in methods if m in only or (m.split('@')[0] in only and '@' in m)]
    rows = []
    for m in methods:
        row: dict = {"method": m}
        for c in CATEGORIES:
            row[c] = seed_averaged_delta(scores, m, c)
        row["seeds"] = sum(1 for x in manifests if m in x["methods"] or m in x.get("drift", {}))
        drift = [x["drift"].get(m) for x in manifests if x.get("drift", {}).get(m) is not None]
        sps = [x["methods"][m]["seconds_per_step"] for x in manifests
               if x["methods"].get(m, {}).get("seconds_per_step")]
        row["drift"] = float(np.mean(drift)) if drift else float("nan")
        row["ref_loglik"] = reference_loglik_delta(summaries, m)
        row["sec_per_step"] = float(np.mean(sps)) if sps else float("nan")
        rows.append(row)
    lora = next((r for r in rows if r["method"] == "lora"), None)
    head = f"{'method':<22}{'seeds':>6}" + "".join(f"{c + ' Δ [95% CI]':>28}" for c in CATEGORIES) + \
        f"{'ref logp Δ':>11}{'drift KL':>10}{'s/step':>8}{'×LoRA':>7}"
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = "".join(f"{r[c][0]:>+9.1f} [{r[c][1]:>+6.1f},{r[c][2]:>+6.1f}]   " for c in CATEGORIES)
        ratio = r["sec_per_step"] / lora["sec_per_step"] if lora and r["sec_per_step"] == r["sec_per_step"] else float("nan")
        lines.append(f"{r['method']:<22}{r['seeds']:>6}{cells}{r['ref_loglik']:>+11.3f}{r['drift']:>10.4f}"
                     f"{r['sec_per_step']:>8.2f}{ratio:>7.2f}")
    if lora:
        lines.append("")
        for r in rows:
            if r["method"].startswith("guard"):
                keep = r["proficiency"][0] / lora["proficiency"][0] if lora["proficiency"][0] else float("nan")
                lines.append(f"{r['method']}: keeps {keep:.0%} of LoRA's proficiency gain (target >= 90%); "
                             + "; ".join(loss_vs_lora(c, r[c][0], lora[c][0]) for c in RETAINED))
    return rows, "\n".join(lines)


def loss_vs_lora(category: str, delta: float, lora_delta: float, eps: float = 0.05) -> str:
    """The method's loss on an axis as a share of LoRA's (target <= 33%), or both losses in points when LoRA
    lost nothing: a share of zero is no number."""
    loss, lora_loss = max(-delta, 0.0), max(-lora_delta, 0.0)
    if lora_loss < eps:
        return (f"{category}: LoRA lost nothing ({lora_delta:+.1f}), this method {delta:+.1f} points "
                f"(target <= 33% of LoRA's loss: {'met' if loss < eps else 'not met'})")
    return f"{category} loss {loss / lora_loss:.0%} of LoRA's (target <= 33%)"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.6))
    prof = {r["method"]: r["proficiency"] for r in rows}
    for ax, cat in zip(axes, ("safety", "knowledge"), strict=True):
        pareto_panel(ax, rows, prof, cat)
    fig.suptitle("Learning vs forgetting, seed-averaged, 95% CI over items", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--config", type=Path, default=ROOT / "configs" / "tradeoff.yaml", help="the study to repeat")
    ap.add_argument("--methods", nargs="+", help="method labels from the config (default: all)")
    ap.add_argument("--sweep", action="store_true", help="add guard runs over energy x kl_weight")
    ap.add_argument("--out", type=Path, default=ROOT / "runs" / "tradeoff")
    ap.add_argument("--steps", type=int, help="override train.steps (every method trains this many steps)")
    ap.add_argument("--no-wise-ft", action="store_true", help="skip the WiSE-FT sweep (its evaluations cost time)")
    ap.add_argument("--table-only", action="store_true",
                    help="train nothing: tabulate the seed runs already in --out (methods may differ by seed)")
    args = ap.parse_args()
    if args.table_only:
        runs = [args.out / f"seed{s}" for s in args.seeds if (args.out / f"seed{s}" / "manifest.json").exists()]
    else:
        runs = [run_seed(s, args.methods, args.sweep, args.out, not args.no_wise_ft, args.steps, args.config)
                for s in args.seeds]
    rows, text = table(runs, args.methods)
    print(f"\nseeds {args.seeds}; Δ in points vs base; drift = mean token KL(base‖tuned) on held-out anchors\n")
    print(text)
    prows, ptext = probe_table(runs, [r["method"] for r in rows])
    print("\nper probe (base level, then Δ [95% CI] in points):\n")
    print(ptext)
    plot(rows, args.out / "tradeoff.png")
    plot_probes(prows, {r["method"]: r["proficiency"] for r in rows}, args.out / "tradeoff_probes.png")
    (args.out / "tradeoff.json").write_text(json.dumps({"categories": rows, "probes": prows}, indent=2))
    print(f"\nwrote {args.out / 'tradeoff.png'}, tradeoff_probes.png and tradeoff.json")


if __name__ == "__main__":
    main()
