"""The one training loop every method shares: transformers' Trainer, loss on assistant tokens only.

Every method sees the same tokenised examples in the same order (Trainer's sampler seeded with the run
seed), the same number of optimizer steps and the same learning-rate schedule; only the trainable
parameters, the peak learning rate and optional extra loss terms differ. `accelerate launch` gives
multi-GPU for free because Trainer runs on accelerate.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from ftguard.errors import DataError
from ftguard.methods.base import TrainJob

log = logging.getLogger(__name__)
IGNORE = -100
ExtraLoss = Callable[[Any, dict[str, torch.Tensor], Any], torch.Tensor]  # (model, inputs, outputs) -> scalar


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
                   needed: int | None = None, seed: int = 0) -> list[dict[str, list[int]]]:
    """Tokenised windows from conversations taken in a seeded order, until `needed` examples exist.

    Every method gets exactly the same examples: the order depends only on the seed.
    """
    order = list(range(len(conversations)))
    random.Random(seed).shuffle(order)
    examples = []
    for c in order:
        for window in split_to_fit(tok, conversations[c], max_len):
            ids, labels = tokenize_conversation(tok, window)
            ids, labels = ids[:max_len], labels[:max_len]
            if any(x != IGNORE for x in labels):
                examples.append({"input_ids": ids, "labels": labels})
        if needed is not None and len(examples) >= needed:
            break
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


class _Timer(TrainerCallback):
    def __init__(self) -> None:
        self.step_times: list[float] = []
        self._t = 0.0

    def on_step_begin(self, args, state, control, **kw):  # noqa: ANN001
        self._t = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
        self.step_times.append(time.perf_counter() - self._t)


class _SFTTrainer(Trainer):
    """Trainer plus optional extra loss terms (the one subclass STYLE.md allows)."""

    extra_loss: ExtraLoss | None = None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):  # noqa: ANN001
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        if self.extra_loss is not None:
            loss = loss + self.extra_loss(model, inputs, outputs)
        return (loss, outputs) if return_outputs else loss


def training_args(job: TrainJob) -> TrainingArguments:
    t = job.train
    return TrainingArguments(
        output_dir=str(job.output_dir / "trainer"), max_steps=t.steps, per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum, learning_rate=job.lr, lr_scheduler_type=t.scheduler,
        warmup_steps=round(t.warmup_ratio * t.steps), weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps, save_strategy="no", report_to=[], seed=job.seed, data_seed=job.seed,
        use_cpu=(not torch.cuda.is_available()) if t.use_cpu is None else t.use_cpu,
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=False,
    )


def run_sft(model: Any, job: TrainJob, extra_loss: ExtraLoss | None = None,
            callbacks: list[TrainerCallback] | None = None) -> tuple[list[dict[str, Any]], float]:
    """Train `model` in place on `job.train_data`; return (log history, mean seconds per step)."""
    t = job.train
    needed = t.steps * t.batch_size * t.grad_accum * max(1, torch.cuda.device_count())
    examples = build_examples(job.tokenizer, job.train_data, job.max_seq_len, needed=needed, seed=job.seed)
    log.info("training on %d examples (%d conversations), %d steps", len(examples), len(job.train_data), job.train.steps)
    timer = _Timer()
    model.train()
    trainer = _SFTTrainer(model=model, args=training_args(job), train_dataset=examples,
                          data_collator=collate(job.tokenizer.pad_token_id), callbacks=[timer, *(callbacks or [])])
    trainer.extra_loss = extra_loss
    trainer.train()
    model.eval()
    steady = timer.step_times[1:] or timer.step_times  # the first step pays one-off set-up costs
    return trainer.state.log_history, sum(steady) / max(len(steady), 1)


def count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
