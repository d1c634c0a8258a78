"""Reproduce the SmolLM2-135M-Instruct model card's multiple-choice numbers with ftguard's lm_eval probe on the
embedded model (assets/data/mc/smollm2_reference.md: zero-shot, lighteval, character-length-normalised
log-likelihood accuracy, chat template).

    python benchmarks/reproduce_smollm2.py --out benchmarks/results/smollm2_reproduction.md [--mmlu 2000]

Closest lm-eval settings: zero-shot, acc_norm (lm-eval divides each choice's log-likelihood by its length in
characters, leading space included; lighteval's `loglikelihood_acc_norm_nospace` leaves the space out), the
model's chat template around each question (lighteval's --use_chat_template), the card's test/validation splits.
ARC (Average) is the mean of ARC-Easy and ARC-Challenge test accuracy (the card does not say so; see the
reference file). MMLU is the cloze form on a seeded subset of the test set when --mmlu is below 14,042.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

PUBLISHED = {"hellaswag": 40.9, "arc": 37.3, "piqa": 66.3, "mmlu": 29.3}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--mmlu", type=int, default=2000, help="MMLU test documents (seeded subset); 14042 = all")
    ap.add_argument("--arc", type=int, default=None, help="documents per ARC split; default all")
    ap.add_argument("--others", type=int, default=None, help="documents of HellaSwag and PIQA (seeded); default all")
    ap.add_argument("--no-chat-too", action="store_true", help="also score without the chat template")
    args = ap.parse_args()

    from ftguard.config import ModelConfig
    from ftguard.models import load_model
    from ftguard.probes.lm_eval import score_items
    from ftguard.registry import PROBES, load_plugins

    load_plugins()
    model, tok = load_model(ModelConfig())
    plan = {"hellaswag": args.others, "arc_easy": args.arc, "arc_challenge": args.arc, "piqa": args.others,
            "mmlu": args.mmlu}
    results: dict[tuple[str, bool], tuple[float, int, float]] = {}
    for chat in (True, False) if args.no_chat_too else (True,):
        for task, n in plan.items():
            probe = PROBES.create("lm_eval", tasks=[task], n_per_task=n, chat_template=chat)
            t0 = time.perf_counter()
            out = score_items(model, tok, probe.items, "acc_norm", chat, 32, False)
            seconds = time.perf_counter() - t0
            results[task, chat] = (100 * sum(o[0] for o in out) / len(out), len(out), seconds)
            print(f"{task} chat={chat}: {results[task, chat][0]:.1f} (n={len(out)}, {seconds:.0f} s)", flush=True)
    lines = ["| task | published (card) | ftguard via lm-eval | n | settings | gap |", "|---|---|---|---|---|---|"]
    for chat in sorted({c for _, c in results}, reverse=True):
        r = {t: results[t, chat] for t, c in results if c == chat}
        arc = (r["arc_easy"][0] + r["arc_challenge"][0]) / 2
        mine = {"hellaswag": r["hellaswag"][0], "arc": arc, "piqa": r["piqa"][0], "mmlu": r["mmlu"][0]}
        ns = {"hellaswag": r["hellaswag"][1], "arc": r["arc_easy"][1] + r["arc_challenge"][1], "piqa": r["piqa"][1],
              "mmlu": r["mmlu"][1]}
        setting = ("zero-shot, acc_norm, chat template" if chat else "zero-shot, acc_norm, no chat template")
        for t, pub in PUBLISHED.items():
            half = 196 * (mine[t] / 100 * (1 - mine[t] / 100) / ns[t]) ** 0.5  # normal-approximation 95% CI
            lines.append(f"| {t} | {pub:.1f} | {mine[t]:.1f} ± {half:.1f} | {ns[t]} | {setting} | {mine[t] - pub:+.1f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(f"# SmolLM2-135M-Instruct: model card vs ftguard (lm-eval)\n\n{text}\n")


if __name__ == "__main__":
    main()
