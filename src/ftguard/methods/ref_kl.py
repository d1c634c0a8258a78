"""`ref_kl`: LoRA plus a KL term to the aligned model on the training tokens themselves, in the style of ASFT
(Anchored Supervised Fine-Tuning, arXiv 2509.23753; LLaMA-Factory's `use_asft_loss`): the loss is the SFT loss
(or, with `dft: true`, Dynamic Fine-Tuning's probability-weighted cross-entropy, arXiv 2508.05629) plus
beta * KL(reference || tuned) of the full next-token distributions at every assistant token of the batch.

Unlike guard's KL (on anchor conversations, with targets computed once), this one anchors the very distributions the
domain data push on; the reference is the model with its adapters off (methods/_reference.py), one extra forward
per step. `beta: 0, dft: false` is plain LoRA (same init, same loss; tested).
"""

from __future__ import annotations

from typing import Any

import torch

from ftguard.errors import ConfigError
from ftguard.methods._reference import reference_logits, target_logps
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS


def asft_loss(beta: float, dft: bool) -> Any:
    def loss(model: Any, inputs: dict[str, torch.Tensor], outputs: Any) -> torch.Tensor:
        ref = reference_logits(model, inputs) if beta > 0 else None
        logp, ref_logp, mask, targets, _ = target_logps(outputs.logits, ref, inputs["labels"])
        n = mask.sum().clamp(min=1)
        tok = logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        if dft:  # DFT: each token's cross-entropy weighted by its (stop-gradient) probability
            total = -(tok.exp().detach() * tok * mask).sum() / n
        else:
            total = outputs.loss
        if beta > 0:
            kl = (ref_logp.exp() * (ref_logp - logp)).sum(-1)  # KL(ref || tuned) per position
            total = total + beta * (kl * mask).sum() / n
        return total

    loss.replaces_loss = True
    return loss


@METHODS.register("ref_kl")
def ref_kl(beta: float = 0.1, dft: bool = False, rank: int = 16, alpha: float = 32,
           target_modules: str | list[str] = "all-linear") -> Method:
    """LoRA + beta * KL(aligned || tuned) on the training tokens (ASFT-style); `dft` uses the DFT loss.

    Args:
        beta: Weight of the KL term; 0 = no reference pass.
        dft: Replace the cross-entropy by DFT's probability-weighted cross-entropy (ASFT's choice).
        rank: LoRA rank.
        alpha: LoRA scale numerator.
        target_modules: "all-linear" or module names.
    """
    if beta < 0:
        raise ConfigError(f"ref_kl: beta must be >= 0, got {beta}")

    def train(job: TrainJob) -> TrainResult:
        cfg = make_lora_config(job.model, rank, alpha, 0.0, target_modules)
        if beta == 0 and not dft:
            return train_adapter(job, cfg)
        return train_adapter(job, cfg, prepare=lambda model: (asft_loss(beta, dft), []))

    return Method(train, saves_adapter=True)
