"""Batched greedy generation and reference log-likelihood, identical for the base and every tuned model.

Prompts are rendered with the tokenizer's chat template, sorted by length so a batch pads little,
left-padded, and decoded greedily; results come back in the input order.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

Messages = list[dict[str, str]]


def _encode(tok: Any, messages: Messages) -> list[int]:
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tok(text, add_special_tokens=False)["input_ids"]


def fit_messages(tok: Any, messages: Messages, max_prompt_tokens: int) -> Messages:
    """Drop the oldest turns (never the system prompt or the last message) until the prompt fits.

    This mirrors training, where long dialogues are cut into windows of recent exchanges that keep the
    system prompt; cutting tokens off the front instead would lose the system prompt first.
    """
    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    turns = messages[len(system):]
    while len(turns) > 1 and len(_encode(tok, system + turns)) > max_prompt_tokens:
        turns = turns[2:] if len(turns) > 2 else turns[1:]  # whole exchanges keep user/assistant alternation
    return system + turns


def render_prompt(tok: Any, messages: Messages, max_prompt_tokens: int) -> list[int]:
    """Token ids of the chat-templated prompt (with the assistant header), at most `max_prompt_tokens`:
    old turns go first (see fit_messages); a single message still too long keeps its end."""
    return _encode(tok, fit_messages(tok, messages, max_prompt_tokens))[-max_prompt_tokens:]


def _stop_ids(tok: Any, model: Any) -> list[int]:
    ids = {tok.eos_token_id}
    for t in ("<|im_end|>", "<|eot_id|>", "<|end|>", "</s>"):
        tid = tok.convert_tokens_to_ids(t) if t in tok.get_vocab() else None
        if tid is not None:
            ids.add(tid)
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(gen_eos if isinstance(gen_eos, list) else [gen_eos])
    return sorted(i for i in ids if i is not None)


def _batches(order: list[int], batch_size: int) -> list[list[int]]:
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def length_batches(order: list[int], lengths: list[int], batch_size: int, min_fill: float = 0.5) -> list[list[int]]:
    """Batches of `order` (longest first) of at most `batch_size`, a new one also where a prompt is shorter than
    `min_fill` of its batch's longest: every prompt is padded to at most twice its length. Without this, a few
    long prompts (HarmBench's contextual behaviours) padded a whole batch of short ones to their length, and
    prefill, which costs per padded token, took three times what the tokens needed."""
    out: list[list[int]] = []
    for i in order:
        if out and len(out[-1]) < batch_size and lengths[i] >= min_fill * lengths[out[-1][0]]:
            out[-1].append(i)
        else:
            out.append([i])
    return out


@torch.inference_mode()
def generate(model: Any, tok: Any, prompts: Sequence[Messages], *, max_new_tokens: int, batch_size: int = 16,
             max_prompt_tokens: int = 1024, desc: str = "generate",
             on_batch: Callable[[list[int], list[str]], None] | None = None) -> list[str]:
    """Greedy responses for `prompts` (in order). `on_batch(indices, texts)` lets callers persist progress."""
    encoded = [render_prompt(tok, p, max_prompt_tokens) for p in prompts]
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i]))
    out: list[str] = [""] * len(encoded)
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    stop = _stop_ids(tok, model)
    device = next(model.parameters()).device
    bar = tqdm(total=len(encoded), desc=desc, unit="prompt", leave=False)
    for idx in length_batches(order, [len(e) for e in encoded], batch_size):
        width = max(len(encoded[i]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):  # left padding: every prompt ends where generation starts
            ids[row, width - len(encoded[i]):] = torch.tensor(encoded[i])
            mask[row, width - len(encoded[i]):] = 1
        gen = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                             max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=stop,
                             temperature=None, top_p=None, top_k=None)
        texts = tok.batch_decode(gen[:, width:], skip_special_tokens=True)
        texts = [t.strip() for t in texts]
        for i, t in zip(idx, texts, strict=True):
            out[i] = t
        if on_batch:
            on_batch(idx, texts)
        bar.update(len(idx))
    bar.close()
    return out


@torch.inference_mode()
def reference_loglik(model: Any, tok: Any, prompts: Sequence[Messages], references: Sequence[str], *,
                     batch_size: int = 8, max_prompt_tokens: int = 1024, max_reference_tokens: int = 256,
                     desc: str = "loglik") -> list[float]:
    """Mean per-token log-probability of each reference answer (plus end-of-turn) after its prompt.

    Rows are batched by reference length (then total length), so the LM head runs on few positions that no
    row needs and batches pad little; results come back in the input order.
    """
    eos = tok.eos_token or ""
    seqs = []
    for p, ref in zip(prompts, references, strict=True):
        prompt_ids = render_prompt(tok, p, max_prompt_tokens)
        ref_ids = tok(ref + eos, add_special_tokens=False)["input_ids"][:max_reference_tokens]
        seqs.append((prompt_ids, ref_ids))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    device = next(model.parameters()).device
    out: list[float] = [float("nan")] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: (-len(seqs[i][1]), -len(seqs[i][0]) - len(seqs[i][1])))
    for idx in tqdm(_batches(order, batch_size), desc=desc, leave=False):
        width = max(len(seqs[i][0]) + len(seqs[i][1]) for i in idx)
        keep = max(len(seqs[i][1]) for i in idx) + 1  # logits only where a reference token is predicted
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(idx):  # left padding: every reference ends at the last position
            p, r = seqs[i]
            ids[row, width - len(p) - len(r):] = torch.tensor(p + r)
            mask[row, width - len(p) - len(r):] = 1
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device), logits_to_keep=keep).logits
        targets = ids[:, width - keep + 1:].to(device)  # (B, keep-1): the last keep-1 tokens
        nll = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), targets,
                                                reduction="none")  # (B, keep-1)
        for row, i in enumerate(idx):
            n = len(seqs[i][1])
            out[i] = -float(nll[row, -n:].mean())
    return out
