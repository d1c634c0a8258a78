"""Distance to the base model on anchor conversations: top-k next-token targets of the base model, and the
token-level KL(base || model) against them. Used as a training regulariser (method `guard`) and as the
judge-free drift number in the report.

Targets are computed once from the base model and stored (top-k log-probabilities plus the tail mass), so
the tuned model never needs a second copy of the base weights next to it.

    targets = base_targets(base_model, tok, conversations, top_k=32)
    kl = mean_kl(tuned_model, tok, targets)      # nats per assistant token
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from ftguard.data.tokenize import IGNORE, collate, tokenize_conversation


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


def _logp_at(model: Any, batch: dict[str, Any], positions: list[torch.Tensor]) -> list[torch.Tensor]:
    """Per row, the model's log-probabilities (P_row, V) at that row's positions.

    The LM head runs only on the union of the rows' positions (`logits_to_keep` as an index tensor): the
    assistant tokens are a small part of an anchor conversation, and the vocabulary projection and its
    softmax are most of the cost of a forward pass of a small model. Models whose forward does not take
    `logits_to_keep` get full logits.
    """
    device = next(model.parameters()).device
    ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
    union = torch.unique(torch.cat([p for p in positions if p.numel()] or [torch.zeros(1, dtype=torch.long)]))
    try:
        logits = model(input_ids=ids, attention_mask=mask, logits_to_keep=union.to(device)).logits
    except TypeError:  # no logits_to_keep in this architecture's forward
        logits = model(input_ids=ids, attention_mask=mask).logits[:, union.to(device)]
    logp = torch.log_softmax(logits.float(), -1)  # (B, U, V)
    where = torch.searchsorted(union, torch.cat(positions)) if positions else None
    out, start = [], 0
    for row, pos in enumerate(positions):
        out.append(logp[row, where[start:start + pos.numel()].to(device)])
        start += pos.numel()
    return out


@torch.no_grad()
def base_targets(model: Any, tok: Any, conversations: list[list[dict[str, str]]], top_k: int = 32,
                 max_len: int = 384, batch_size: int = 8,
                 observe: Callable[[torch.Tensor], None] | None = None) -> Targets:
    """Run the base model once over the conversations and keep its top-k log-probabilities.

    `observe`, if given, is called with each batch's attention mask just before its forward pass (so forward
    hooks, e.g. activation statistics, can share this pass and leave the padding out).
    """
    model.eval()
    seqs = [tokenize_conversation(tok, c) for c in conversations]
    seqs = [(ids[:max_len], labels[:max_len]) for ids, labels in seqs]
    out = Targets([s[0] for s in seqs], [_positions(s[1]) for s in seqs], [], [])
    top_ids: list[Any] = [None] * len(seqs)
    top_logp: list[Any] = [None] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))  # similar lengths together: little padding
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        batch = out.batch(idx, tok.pad_token_id)
        if observe is not None:
            observe(batch["attention_mask"])
        for i, logp in zip(idx, _logp_at(model, batch, [out.positions[i] for i in idx]), strict=True):
            top = logp.topk(top_k, dim=-1)  # (P, k)
            top_ids[i], top_logp[i] = top.indices.cpu(), top.values.cpu()
    out.topk_ids, out.topk_logp = top_ids, top_logp
    return out


def kl_loss(model: Any, targets: Targets, idx: list[int], pad_id: int) -> torch.Tensor:
    """Mean over assistant tokens of KL(base || model), top-k plus one tail bucket (differentiable)."""
    device = next(model.parameters()).device
    logps = _logp_at(model, targets.batch(idx, pad_id), [targets.positions[i] for i in idx])
    total, count = logps[0].new_zeros(()) if logps else torch.zeros(()), 0
    for logp, i in zip(logps, idx, strict=True):
        if logp.shape[0] == 0:
            continue
        base = targets.topk_logp[i].to(device)  # (P, k)
        model_top = logp.gather(-1, targets.topk_ids[i].to(device))  # (P, k)
        p_base = base.exp()
        tail_base = (1 - p_base.sum(-1)).clamp(min=1e-8)
        tail_model = (1 - model_top.exp().sum(-1)).clamp(min=1e-8)
        kl = (p_base * (base - model_top)).sum(-1) + tail_base * (tail_base.log() - tail_model.log())
        total = total + kl.sum()
        count += logp.shape[0]
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
