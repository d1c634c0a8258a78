"""`constrained_sft`: the token-wise constrained fine-tuning objective of Qi et al., "Safety Alignment Should Be Made
More Than Just a Few Tokens Deep" (arXiv 2406.05946, section 4; Unispac/shallow-vs-deep-alignment). Alignment is
shallow: it lives mostly in the first tokens of a reply, and fine-tuning undoes it there first. The objective keeps
each response token's log-probability near the aligned model's, hardest on the first tokens:

    loss_t = (2 / beta_t) * (softplus(beta_t * (log pi_ref(y_t) - log pi(y_t))) - log 2)

averaged over assistant tokens, t the token's position in its assistant turn. As beta_t -> 0 this is the
cross-entropy (up to a constant; the `- log 2` keeps the logged loss comparable); a large beta_t stops the push once
the tuned model's probability passes the reference's. The paper's setting: beta_1 = 0.5, beta_2..5 = 2,
beta_t = 0.1 after that (`betas: [0.5, 2, 2, 2, 2]`, `beta_rest: 0.1`). With every beta 0 it is plain LoRA
(tested). The reference is the model with its adapters off (methods/_reference.py): one extra forward per step.
"""

from __future__ import annotations

from typing import Any

import torch

from ftguard.errors import ConfigError
from ftguard.methods._reference import reference_logits, target_logps
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS

LOG2 = 0.6931471805599453


def beta_per_position(pos: torch.Tensor, betas: list[float], beta_rest: float) -> torch.Tensor:
    """beta_t for 1-based positions `pos` (0 = not a target: beta_rest, masked out anyway)."""
    table = torch.tensor([beta_rest, *betas], dtype=torch.float32, device=pos.device)
    return table[pos.clamp(max=len(betas)).where(pos <= len(betas), torch.zeros_like(pos))]


def token_loss(logp_t: torch.Tensor, ref_t: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Per-token objective; beta == 0 gives the cross-entropy's gradient exactly (-log pi + const)."""
    z = ref_t - logp_t
    safe = beta.clamp(min=1e-8)
    constrained = 2 / safe * (torch.nn.functional.softplus(safe * z) - LOG2)
    return torch.where(beta > 0, constrained, z)


def constrained_loss(betas: list[float], beta_rest: float) -> Any:
    def loss(model: Any, inputs: dict[str, torch.Tensor], outputs: Any) -> torch.Tensor:
        logp, ref_logp, mask, targets, pos = target_logps(outputs.logits, reference_logits(model, inputs),
                                                          inputs["labels"])
        idx = targets.unsqueeze(-1)
        per_token = token_loss(logp.gather(-1, idx).squeeze(-1), ref_logp.gather(-1, idx).squeeze(-1),
                               beta_per_position(pos, betas, beta_rest))
        return (per_token * mask).sum() / mask.sum().clamp(min=1)

    loss.replaces_loss = True
    return loss


@METHODS.register("constrained_sft")
def constrained_sft(betas: list[float] | None = None, beta_rest: float = 0.1, rank: int = 16, alpha: float = 32,
                    target_modules: str | list[str] = "all-linear") -> Method:
    """LoRA trained with Qi et al.'s token-wise constrained objective (strongest on the first response tokens).

    Args:
        betas: beta_t for response positions 1, 2, ...; default the paper's [0.5, 2, 2, 2, 2].
        beta_rest: beta_t for every later position (paper: 0.1).
        rank: LoRA rank.
        alpha: LoRA scale numerator.
        target_modules: "all-linear" or module names.
    """
    betas = [0.5, 2.0, 2.0, 2.0, 2.0] if betas is None else list(betas)
    if any(b < 0 for b in [*betas, beta_rest]):
        raise ConfigError(f"constrained_sft: every beta must be >= 0, got betas={betas}, beta_rest={beta_rest}")

    def train(job: TrainJob) -> TrainResult:
        cfg = make_lora_config(job.model, rank, alpha, 0.0, target_modules)
        if not any(betas) and not beta_rest:
            return train_adapter(job, cfg)
        return train_adapter(job, cfg, prepare=lambda model: (constrained_loss(betas, beta_rest), []))

    return Method(train, saves_adapter=True)
