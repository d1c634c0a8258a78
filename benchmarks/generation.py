"""Batched evaluation generation vs a one-prompt-at-a-time loop, side by side on the embedded model.

    python benchmarks/generation.py [--n 32] [--batch-size 32] [--max-new-tokens 48]

Both arms generate greedily for the same probe prompts (a mix of the three probes) with the same code path
(`ftguard.generation.generate`); the only difference is the batch size. Prints wall times and the ratio,
and checks how many responses are identical (greedy decoding with padding can differ in the last bits).
"""

from __future__ import annotations

import argparse
import time

import torch

from ftguard.config import ModelConfig
from ftguard.generation import generate
from ftguard.models import load_model
from ftguard.registry import PROBES


def prompts(n: int) -> list[list[dict[str, str]]]:
    import ftguard.probes  # noqa: F401  (registration)

    per = -(-n // 3)
    items = [it for name in ("sgd_next_turn", "toxigen_counter", "dolly_qa") for it in PROBES.create(name, n=per).items]
    return [it.messages for it in items[:n]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=48)
    args = ap.parse_args()
    torch.manual_seed(0)
    model, tok = load_model(ModelConfig())
    ps = prompts(args.n)
    generate(model, tok, ps[:2], max_new_tokens=4, batch_size=2)  # warm-up, untimed
    t0 = time.perf_counter()
    batched = generate(model, tok, ps, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    t_batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    single = generate(model, tok, ps, max_new_tokens=args.max_new_tokens, batch_size=1)
    t_single = time.perf_counter() - t0
    same = sum(a == b for a, b in zip(batched, single, strict=True))
    print(f"prompts={len(ps)} max_new_tokens={args.max_new_tokens} torch_threads={torch.get_num_threads()}")
    print(f"one at a time : {t_single:8.1f} s  ({len(ps) / t_single:.2f} prompts/s)")
    print(f"batched ({args.batch_size:>3}) : {t_batched:8.1f} s  ({len(ps) / t_batched:.2f} prompts/s)")
    print(f"speed-up      : {t_single / t_batched:.2f}x   identical responses: {same}/{len(ps)}")


if __name__ == "__main__":
    main()
