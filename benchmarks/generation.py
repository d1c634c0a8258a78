"""Batched evaluation generation vs a one-prompt-at-a-time loop, side by side on the embedded model.

    python benchmarks/generation.py [--probes toxigen_counter sgd_next_turn] [--n 30] [--batch-size 30]

Per probe, both arms generate greedily for the same prompts with the quick preset's settings and the same
code path (`ftguard.generation.generate`); the only difference is the batch size. Prints wall times and
the ratio, and how many responses are identical (padding can flip a late token). On a CPU the prefill of
long prompts is compute-bound and batching cannot shrink it; batching pays off on the decode steps.
"""

from __future__ import annotations

import argparse
import time

import torch

from ftguard.config import ModelConfig
from ftguard.generation import generate
from ftguard.models import load_model
from ftguard.registry import PROBES

QUICK = {"sgd_next_turn": 32, "toxigen_counter": 40, "dolly_qa": 40}  # max_new_tokens in configs/quick.yaml


def prompts(probe: str, n: int) -> list[list[dict[str, str]]]:
    import ftguard.probes  # noqa: F401  (registration)

    return [it.messages for it in PROBES.create(probe, n=n).items]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--probes", nargs="+", default=["toxigen_counter", "sgd_next_turn"], choices=list(QUICK))
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=30)
    ap.add_argument("--max-prompt-tokens", type=int, default=256)
    args = ap.parse_args()
    torch.manual_seed(0)
    model, tok = load_model(ModelConfig())
    generate(model, tok, prompts(args.probes[0], 2), max_new_tokens=4, batch_size=2)  # warm-up, untimed
    print(f"n={args.n} batch_size={args.batch_size} max_prompt_tokens={args.max_prompt_tokens} "
          f"torch_threads={torch.get_num_threads()}")
    for probe in args.probes:
        ps, kw = prompts(probe, args.n), {"max_new_tokens": QUICK[probe], "max_prompt_tokens": args.max_prompt_tokens}
        t0 = time.perf_counter()
        batched = generate(model, tok, ps, batch_size=args.batch_size, **kw)
        t_batched = time.perf_counter() - t0
        t0 = time.perf_counter()
        single = generate(model, tok, ps, batch_size=1, **kw)
        t_single = time.perf_counter() - t0
        same = sum(a == b for a, b in zip(batched, single, strict=True))
        print(f"{probe:<16} one at a time {t_single:7.1f} s | batched {t_batched:7.1f} s | "
              f"speed-up {t_single / t_batched:5.2f}x | identical {same}/{len(ps)} | max_new_tokens {QUICK[probe]}")


if __name__ == "__main__":
    main()
