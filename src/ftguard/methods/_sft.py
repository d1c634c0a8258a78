"""The one training loop every method shares: transformers' Trainer, loss on assistant tokens only.

Every method sees the same tokenised examples in the same order (Trainer's sampler seeded with the run
seed), the same number of optimizer steps and the same learning-rate schedule; only the trainable
parameters, the peak learning rate and optional extra loss terms differ. `accelerate launch` gives
multi-GPU for free because Trainer runs on accelerate.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from ftguard.data.tokenize import IGNORE, build_examples, collate, tokenize_conversation
from ftguard.methods.base import TrainJob

log = logging.getLogger(__name__)
ExtraLoss = Callable[[Any, dict[str, torch.Tensor], Any], torch.Tensor]  # (model, inputs, outputs) -> scalar


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
            extra = self.extra_loss(model, inputs, outputs)
            # a loss marked `replaces_loss` (constrained_sft's token-wise objective) stands in for the cross-entropy
            loss = extra if getattr(self.extra_loss, "replaces_loss", False) else loss + extra
        return (loss, outputs) if return_outputs else loss


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool | None:
    """Whether this CPU computes bf16 in hardware (x86 AVX512-BF16 or AMX; /proc/cpuinfo's flags); None where it
    cannot tell (no /proc/cpuinfo, not x86). Without it, bf16 autocast on CPU is emulated: measured 26x slower than
    float32 on an AVX2-only AMD EPYC (2026-12-07), where it is 1.6x faster on an AVX512-BF16 Xeon."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    flags = next((line.split(":", 1)[1].split() for line in cpuinfo.splitlines() if line.startswith("flags")), None)
    if flags is None:
        return None
    return bool({"avx512_bf16", "amx_bf16"} & set(flags))


def _on_cpu(job: TrainJob) -> bool:
    return (not torch.cuda.is_available()) if job.train.use_cpu is None else job.train.use_cpu


def mixed_precision(job: TrainJob) -> str:
    """The autocast the loop really uses: `auto` is bf16 where the device computes it natively (CUDA with bf16, a
    CPU with AVX512-BF16/AMX) and float32 elsewhere; an explicit `bf16` on a CPU without it is kept, with a warning."""
    t = job.train
    cpu = _on_cpu(job)
    native = (cpu_has_native_bf16() is not False) if cpu else torch.cuda.is_bf16_supported()
    if t.mixed_precision == "auto":
        return "bf16" if native else "no"
    if t.mixed_precision == "bf16" and cpu and not native:
        log.warning("mixed_precision bf16 on a CPU without AVX512-BF16/AMX is emulated (about 20x slower than "
                    "float32 here); use mixed_precision: auto or no")
    return t.mixed_precision


def training_args(job: TrainJob, precision: str | None = None) -> TrainingArguments:
    """Trainer's arguments; `precision`: the resolved mixed_precision (default: resolved here)."""
    t = job.train
    precision = precision or mixed_precision(job)
    return TrainingArguments(
        output_dir=str(job.output_dir / "trainer"), max_steps=t.steps, per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum, learning_rate=job.lr, lr_scheduler_type=t.scheduler,
        warmup_steps=round(t.warmup_ratio * t.steps), weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm,
        logging_steps=t.logging_steps, save_strategy="no", report_to=[], seed=job.seed, data_seed=job.seed,
        use_cpu=_on_cpu(job),
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=False,
        bf16=precision == "bf16", fp16=precision == "fp16",
    )


def run_sft(model: Any, job: TrainJob, extra_loss: ExtraLoss | None = None,
            callbacks: list[TrainerCallback] | None = None) -> tuple[list[dict[str, Any]], float]:
    """Train `model` in place on `job.train_data`; return (log history, mean seconds per step)."""
    t = job.train
    needed = t.steps * t.batch_size * t.grad_accum * max(1, torch.cuda.device_count())
    stats: dict[str, int] = {}
    examples = build_examples(job.tokenizer, job.train_data, job.max_seq_len, needed=needed, seed=job.seed,
                              stats=stats)
    log.info("training on %d examples (%d conversations), %d steps", len(examples), len(job.train_data), job.train.steps)
    if stats["dropped"] or stats["cut"]:
        log.warning("of %d training windows read, %d were dropped (no assistant token within data.max_seq_len=%d) "
                    "and %d cut at max_seq_len; raise data.max_seq_len to keep them", stats["windows"] +
                    stats["dropped"], stats["dropped"], job.max_seq_len, stats["cut"])
    timer = _Timer()
    model.train()
    precision = mixed_precision(job)  # once: reads /proc/cpuinfo and may warn
    trainer = _SFTTrainer(model=model, args=training_args(job, precision), train_dataset=examples,
                          data_collator=collate(job.tokenizer.pad_token_id), callbacks=[timer, *(callbacks or [])])
    trainer.extra_loss = extra_loss
    trainer.train()
    model.eval()
    steady = timer.step_times[1:] or timer.step_times  # the first step pays one-off set-up costs
    # first entry: what was kept and dropped, and the autocast really used (mixed_precision: auto resolves per machine)
    history = [{"training_data": stats, "mixed_precision": precision}, *trainer.state.log_history]
    return history, sum(steady) / max(len(steady), 1)


__all__ = ["IGNORE", "collate", "count_params", "run_sft", "tokenize_conversation", "training_args"]


def count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())
