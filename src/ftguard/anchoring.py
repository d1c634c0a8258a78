"""Anchor conversations answered by the base model, and the drift number KL(base ‖ model) on held-out ones.

    anchors = anchor_conversations(cfg, "train", cfg.anchors.n, base_fp, base, cache_root)
    drift = DriftMeter(cfg, base_fp, base, cache_root); drift.measure(model_fp, tuned)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ftguard.anchor_prompts import anchor_prompts
from ftguard.cache import JsonlCache, digest
from ftguard.config import RunConfig
from ftguard.evaluation import LazyModel, cached_generate


def anchor_conversations(cfg: RunConfig, split: str, n: int, base_fp: str, base: LazyModel,
                         cache_root: Path) -> list[list[dict[str, str]]]:
    """`n` anchor prompts of `split` with the base model's own greedy answers (cached like any generation)."""
    prompts = anchor_prompts(n, seed=cfg.anchors.seed, split=split)  # type: ignore[arg-type]
    keys = [digest("gen", base_fp, p["messages"], cfg.anchors.max_new_tokens, cfg.generation.max_prompt_tokens)
            for p in prompts]
    responses = cached_generate(keys, [p["messages"] for p in prompts], base,
                                JsonlCache(cache_root / "generations" / f"{base_fp}.jsonl"),
                                max_new_tokens=cfg.anchors.max_new_tokens, gen=cfg.generation,
                                desc=f"base/anchors-{split}")
    # an empty answer stays: "stop at once" is base behaviour worth anchoring too
    return [p["messages"] + [{"role": "assistant", "content": r}] for p, r in zip(prompts, responses, strict=True)]


class DriftMeter:
    """Mean token KL(base ‖ model) on held-out anchor conversations; cached per model fingerprint."""

    def __init__(self, cfg: RunConfig, base_fp: str, base: LazyModel, cache_root: Path):
        self.cfg, self.base_fp, self.base, self.cache_root = cfg, base_fp, base, cache_root
        self.cache = JsonlCache(cache_root / "drift.jsonl")
        self._targets: Any = None

    def _key(self, model_fp: str) -> str:
        a = self.cfg.anchors
        return digest("drift", self.base_fp, model_fp, a.drift_n, a.seed, a.max_new_tokens, a.top_k,
                      self.cfg.data.max_seq_len)

    def measure(self, model_fp: str, model: LazyModel) -> float | None:
        if self.cfg.anchors.drift_n == 0:
            return None
        key = self._key(model_fp)
        if key not in self.cache:
            from ftguard.drift import base_targets, mean_kl

            if self._targets is None:
                convs = anchor_conversations(self.cfg, "drift", self.cfg.anchors.drift_n, self.base_fp, self.base,
                                             self.cache_root)
                base_model, tok = self.base.get()
                self._targets = base_targets(base_model, tok, convs, self.cfg.anchors.top_k, self.cfg.data.max_seq_len)
            tuned, tok = model.get()
            self.cache.put_many({key: mean_kl(tuned, tok, self._targets)})
        return self.cache.get(key)
