"""Published forgetting-aware baselines, all through the shared loop and data (see ../RESEARCH notes):

- `dora`: weight-decomposed LoRA (Liu et al. 2024), PEFT `use_dora=True`.
- `corda_kpm`: CorDA knowledge-preserving mode (Yang et al. 2024): the adapter is initialised from the
  smallest components of W·C, C the input covariance on anchor data; PEFT `init_lora_weights="corda"`.
- `osf`: orthogonal subspace fine-tuning (arXiv 2504.07097): the top singular subspace of each W stays
  frozen, the rest trains with gradients projected orthogonal to it; PEFT `OSFConfig`.
- `replay`: plain LoRA on the domain data mixed with anchor conversations (base-model answers).
"""

from __future__ import annotations

from typing import Any

import torch

from ftguard.errors import ConfigError
from ftguard.methods._sft import count_params, run_sft
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.models import save_method_output
from ftguard.registry import METHODS


@METHODS.register("dora")
def dora(rank: int = 16, alpha: float = 32, dropout: float = 0.0, target_modules: str | list[str] = "all-linear") -> Method:
    """DoRA: LoRA on the direction of each weight plus a trained magnitude vector."""

    def train(job: TrainJob) -> TrainResult:
        return train_adapter(job, make_lora_config(job.model, rank, alpha, dropout, target_modules, use_dora=True))

    return train


@METHODS.register("corda_kpm")
def corda_kpm(rank: int = 16, alpha: float = 32, target_modules: str | list[str] = "all-linear") -> Method:
    """CorDA in knowledge-preserving mode, covariance from the anchor conversations.

    Args:
        rank: Adapter rank (the r smallest components of W·C initialise it).
        alpha: LoRA scale numerator.
        target_modules: "all-linear" or module names.
    """

    def train(job: TrainJob) -> TrainResult:
        from peft.tuners.lora.config import CordaConfig
        from peft.tuners.lora.corda import preprocess_corda

        from ftguard.methods._sft import tokenize_conversation

        # preprocess_corda matches names literally: expand "all-linear" as PEFT does (every Linear but the head)
        targets = target_modules if isinstance(target_modules, list) else sorted(
            {n.rsplit(".", 1)[-1] for n, m in job.model.named_modules()
             if isinstance(m, torch.nn.Linear) and m is not job.model.get_output_embeddings()})
        cfg = make_lora_config(job.model, rank, alpha, 0.0, targets, init_lora_weights="corda",
                               corda_config=CordaConfig(corda_method="kpm"))
        device = next(job.model.parameters()).device

        @torch.no_grad()
        def run_model() -> None:
            for conv in job.anchor_data:
                ids = tokenize_conversation(job.tokenizer, conv)[0][: job.max_seq_len]
                job.model(input_ids=torch.tensor([ids], device=device))

        job.model.eval()
        preprocess_corda(job.model, cfg, run_model=run_model)
        return train_adapter(job, cfg, save_merged=True)

    train.needs_anchors = True  # type: ignore[attr-defined]
    return train


@METHODS.register("osf")
def osf(effective_rank: float = 0.5, target_modules: str | list[str] = "all-linear") -> Method:
    """Orthogonal subspace fine-tuning: the top `effective_rank` singular directions of each W stay frozen.

    Args:
        effective_rank: Frozen share (0..1] of each weight's smaller dimension, or an absolute rank (> 1).
        target_modules: "all-linear" or module names.
    """
    if effective_rank <= 0:
        raise ConfigError(f"osf: effective_rank must be > 0, got {effective_rank}")

    def train(job: TrainJob) -> TrainResult:
        from peft import OSFConfig, get_peft_model

        torch.manual_seed(job.seed)
        rank: float | int = int(effective_rank) if effective_rank > 1 else effective_rank
        model = get_peft_model(job.model, OSFConfig(target_modules=target_modules, effective_rank=rank))
        trainable, total = count_params(model)
        history, sps = run_sft(model, job)
        merged = model.merge_and_unload()
        merged.save_pretrained(job.output_dir, safe_serialization=True)
        job.tokenizer.save_pretrained(job.output_dir)
        save_method_output(job.output_dir, base_name=job.base_name, artifact="weights")
        return TrainResult(merged, "weights", trainable, total, history, sps)

    return train


@METHODS.register("replay")
def replay(fraction: float = 0.2, rank: int = 16, alpha: float = 32,
           target_modules: str | list[str] = "all-linear") -> Method:
    """LoRA on domain data mixed with anchor conversations, about `fraction` of the training conversations.

    Args:
        fraction: Share (0..1) of anchor conversations in the training mix; 0 = plain LoRA.
        rank: LoRA rank.
        alpha: LoRA scale numerator.
        target_modules: "all-linear" or module names.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"replay: fraction must be in [0, 1), got {fraction}")

    def train(job: TrainJob) -> TrainResult:
        import dataclasses

        n_anchor = round(len(job.train_data) * fraction / (1 - fraction))
        anchors = [job.anchor_data[i % len(job.anchor_data)] for i in range(n_anchor)] if job.anchor_data else []
        mixed = dataclasses.replace(job, train_data=list(job.train_data) + anchors)
        return train_adapter(mixed, make_lora_config(job.model, rank, alpha, 0.0, target_modules))

    train.needs_anchors = fraction > 0  # type: ignore[attr-defined]
    return train


