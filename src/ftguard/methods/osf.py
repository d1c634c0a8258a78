"""`osf`: orthogonal subspace fine-tuning (arXiv 2504.07097): the top singular subspace of each W stays frozen,
the rest trains with gradients projected orthogonal to it (PEFT `OSFConfig`), through the shared loop."""

from __future__ import annotations

import torch

from ftguard.errors import ConfigError
from ftguard.methods._sft import count_params, run_sft
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.models import save_method_output
from ftguard.registry import METHODS


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

    return Method(train)
