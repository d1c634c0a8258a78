"""Chat tokenisation shared by training, the KL targets of guard and the drift number: render a conversation
with the tokenizer's chat template prefix by prefix, label the assistant tokens, cut long dialogues into
windows of whole exchanges, pad batches.

    ids, labels = tokenize_conversation(tok, messages)      # labels -100 except on assistant replies
    examples = build_examples(tok, conversations, max_len=384, needed=64, seed=0)
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch

from ftguard.errors import DataError

IGNORE = -100


def _render(tok: Any, messages: list[dict[str, str]], generation_prompt: bool) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def message_segments(tok: Any, messages: list[dict[str, str]]) -> list[tuple[list[int], list[int]]]:
    """Per message: (input_ids, labels) of its rendered text; labels are -100 except on assistant replies
    (content + end-of-turn), so the loss is on assistant tokens only."""
    segments = []
    done = ""
    for i, msg in enumerate(messages):
        if msg["role"] == "assistant":
            header = _render(tok, messages[:i], True)
            full = _render(tok, messages[: i + 1], False)
        else:
            header = full = _render(tok, messages[: i + 1], False)
        if not header.startswith(done) or not full.startswith(header):
            raise DataError("The chat template does not render conversations prefix by prefix; "
                            "set model.chat_template to a template that does (e.g. ChatML)")
        ids: list[int] = []
        labels: list[int] = []
        for text, learn in ((header[len(done):], False), (full[len(header):], True)):
            seg = tok(text, add_special_tokens=False)["input_ids"] if text else []
            ids += seg
            labels += seg if learn else [IGNORE] * len(seg)
        segments.append((ids, labels))
        done = full
    return segments


def tokenize_conversation(tok: Any, messages: list[dict[str, str]]) -> tuple[list[int], list[int]]:
    """input_ids and labels of a whole conversation (see message_segments)."""
    segments = message_segments(tok, messages)
    return [i for ids, _ in segments for i in ids], [x for _, labels in segments for x in labels]


def split_to_fit(tok: Any, messages: list[dict[str, str]], max_len: int) -> list[list[dict[str, str]]]:
    """Cut a long dialogue into windows of whole (user, assistant) exchanges that fit `max_len` tokens.

    Each window keeps the system prompt, so every agent turn is trained on once with its recent context,
    instead of truncation silently dropping the ends of dialogues (confirmations, goodbyes). Window sizes
    come from one tokenisation of the whole dialogue (per-message token counts).
    """
    system = [m for m in messages[:1] if m["role"] == "system"]
    lengths = [len(ids) for ids, _ in message_segments(tok, messages)]
    head = lengths[0] if system else 0
    windows: list[list[dict[str, str]]] = []
    current: list[int] = []  # message indices in the current window
    size = head
    for i in range(len(system), len(messages), 2):
        pair = list(range(i, min(i + 2, len(messages))))
        cost = sum(lengths[j] for j in pair)
        if current and size + cost > max_len:
            windows.append(system + [messages[j] for j in current])
            current, size = [], head
        current += pair
        size += cost
    if current:
        windows.append(system + [messages[j] for j in current])
    return windows


def build_examples(tok: Any, conversations: list[list[dict[str, str]]], max_len: int,
                   needed: int | None = None, seed: int = 0,
                   stats: dict[str, int] | None = None) -> list[dict[str, list[int]]]:
    """Tokenised windows from conversations taken in a seeded order, until `needed` examples exist.

    Every method gets exactly the same examples: the order depends only on the seed. Nothing is dropped
    silently: `stats` (if given) counts the conversations read, the windows kept, the windows dropped because
    no assistant token fits in `max_len` (one exchange longer than max_len), and the windows cut at max_len.
    """
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    examples = []
    counts = {"conversations": 0, "windows": 0, "dropped": 0, "cut": 0}
    for c in order:
        counts["conversations"] += 1
        for window in split_to_fit(tok, conversations[c], max_len):
            ids, labels = tokenize_conversation(tok, window)
            counts["cut"] += len(ids) > max_len
            ids, labels = ids[:max_len], labels[:max_len]
            if any(x != IGNORE for x in labels):
                examples.append({"input_ids": ids, "labels": labels})
                counts["windows"] += 1
            else:
                counts["dropped"] += 1
        if needed is not None and len(examples) >= needed:
            break
    if stats is not None:
        stats.update(counts)
    if not examples:
        raise DataError("No training example has an assistant token within data.max_seq_len; raise max_seq_len")
    return examples


def collate(pad_id: int) -> Callable[[list[dict[str, list[int]]]], dict[str, torch.Tensor]]:
    def fn(batch: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        width = max(len(b["input_ids"]) for b in batch)
        ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, b in enumerate(batch):
            n = len(b["input_ids"])
            ids[row, :n] = torch.tensor(b["input_ids"])
            labels[row, :n] = torch.tensor(b["labels"])
            mask[row, :n] = 1
        return {"input_ids": ids, "labels": labels, "attention_mask": mask}

    return fn


