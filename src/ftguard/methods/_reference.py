"""The aligned (reference) model's token log-probabilities during adapter training, for the methods that constrain
the tuned model to it on the training tokens themselves (ref_kl, constrained_sft). With LoRA the reference is the
same network with its adapters switched off, so it costs one extra forward pass and no second copy of the model.

    ref = reference_logits(model, inputs)                      # (B, T, V), no gradient
    logp, ref_logp, mask, pos = target_logps(outputs.logits, ref, inputs["labels"])
"""

from __future__ import annotations

from typing import Any

import torch

from ftguard.data.tokenize import IGNORE


@torch.no_grad()
def reference_logits(model: Any, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    """Logits of the model with every adapter disabled (the base it was loaded from)."""
    with model.disable_adapter():
        return model(input_ids=inputs["input_ids"], attention_mask=inputs.get("attention_mask")).logits.detach()


def response_positions(mask: torch.Tensor) -> torch.Tensor:
    """1-based position of every target token within its assistant turn (0 where mask is 0), per row:
    [0, 1, 1, 1, 0, 1, 1] -> [0, 1, 2, 3, 0, 1, 2]."""
    m = mask.long()
    count = m.cumsum(-1)
    start = torch.where(m == 0, count, torch.zeros_like(count)).cummax(-1).values
    return (count - start) * m


def target_logps(logits: torch.Tensor, ref_logits: torch.Tensor | None, labels: torch.Tensor):
    """Shifted next-token view: (log-softmax of the policy (B, T-1, V), of the reference or None, target mask,
    target ids, position of each target in its turn)."""
    targets = labels[:, 1:]
    mask = targets != IGNORE
    logp = logits[:, :-1].float().log_softmax(-1)
    ref = ref_logits[:, :-1].float().log_softmax(-1) if ref_logits is not None else None
    return logp, ref, mask, targets.clamp(min=0), response_positions(mask)
