"""Distance to the base model on anchor conversations: top-k next-token targets of the base model, and the
token-level KL(base || model) against them. Used as a training regulariser (method `guard`) and as the
judge-free drift number in the report.

Targets are computed once from the base model and stored (top-k log-probabilities plus the tail mass), so
the tuned model never needs a second copy of the base weights next to it.

    targets = base_targets(base_model, tok, conversations, top_k=32)
    kl = mean_kl(tuned_model, tok, targets)      # nats per assistant token
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ftguard.methods._sft import IGNORE, collate, tokenize_conversation


@dataclass
class Targets:
    """Base-model next-token distributions on the assistant tokens of anchor conversations."""

    input_ids: list[list[int]]  # one token sequence per conversation
    positions: list[torch.Tensor]  # (P,) positions t whose next token t+1 is an assistant token
    topk_ids: list[torch.Tensor]  # (P, k) token ids of the base model's top-k at those positions
    topk_logp: list[torch.Tensor]  # (P, k) their base log-probabilities

    def __len__(self) -> int:
        return len(self.input_ids)

    def batch(self, idx: list[int], pad_id: int) -> dict[str, Any]:
        batch = collate(pad_id)([{"input_ids": self.input_ids[i], "labels": self.input_ids[i]} for i in idx])
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"], "idx": idx}


def _positions(labels: list[int]) -> torch.Tensor:
    return torch.tensor([t - 1 for t in range(1, len(labels)) if labels[t] != IGNORE], dtype=torch.long)


@torch.no_grad()
def base_targets(model: Any, tok: Any, conversations: list[list[dict[str, str]]], top_k: int = 32,
                 max_len: int = 384, batch_size: int = 8) -> Targets:
    """Run the base model once over the conversations and keep its top-k log-probabilities."""
    model.eval()
    seqs = [tokenize_conversation(tok, c) for c in conversations]
    seqs = [(ids[:max_len], labels[:max_len]) for ids, labels in seqs]
    out = Targets([s[0] for s in seqs], [_positions(s[1]) for s in seqs], [], [])
    device = next(model.parameters()).device
    for start in range(0, len(seqs), batch_size):
        idx = list(range(start, min(start + batch_size, len(seqs))))
        batch = out.batch(idx, tok.pad_token_id)
        logp = torch.log_softmax(model(input_ids=batch["input_ids"].to(device),
                                       attention_mask=batch["attention_mask"].to(device)).logits.float(), -1)
        for row, i in enumerate(idx):
            top = logp[row, out.positions[i].to(device)].topk(top_k, dim=-1)  # (P, k)
            out.topk_ids.append(top.indices.cpu())
            out.topk_logp.append(top.values.cpu())
    return out


def kl_loss(model: Any, targets: Targets, idx: list[int], pad_id: int) -> torch.Tensor:
    """Mean over assistant tokens of KL(base || model), top-k plus one tail bucket (differentiable)."""
    device = next(model.parameters()).device
    batch = targets.batch(idx, pad_id)
    logits = model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device)).logits
    logp = torch.log_softmax(logits.float(), -1)  # (B, T, V)
    total, count = logp.new_zeros(()), 0
    for row, i in enumerate(idx):
        pos = targets.positions[i].to(device)
        if pos.numel() == 0:
            continue
        base = targets.topk_logp[i].to(device)  # (P, k)
        model_top = logp[row, pos].gather(-1, targets.topk_ids[i].to(device))  # (P, k)
        p_base = base.exp()
        tail_base = (1 - p_base.sum(-1)).clamp(min=1e-8)
        tail_model = (1 - model_top.exp().sum(-1)).clamp(min=1e-8)
        kl = (p_base * (base - model_top)).sum(-1) + tail_base * (tail_base.log() - tail_model.log())
        total = total + kl.sum()
        count += pos.numel()
    return total / max(count, 1)


@torch.no_grad()
def mean_kl(model: Any, tok: Any, targets: Targets, batch_size: int = 8) -> float:
    """Token-weighted mean KL(base || model) over all target conversations (nats per token)."""
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(targets), batch_size):
        idx = list(range(start, min(start + batch_size, len(targets))))
        n = sum(int(targets.positions[i].numel()) for i in idx)
        total += float(kl_loss(model, targets, idx, tok.pad_token_id)) * n
        tokens += n
    return total / max(tokens, 1)
