"""Full fine-tuning: every weight trains. The strongest learner and, usually, the worst forgetter."""

from __future__ import annotations

from ftguard.methods._sft import count_params, run_sft
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.models import save_method_output
from ftguard.registry import METHODS


@METHODS.register("full")
def full() -> Method:
    """All parameters train with the shared loop (set its `lr` low, e.g. 2e-5)."""

    def train(job: TrainJob) -> TrainResult:
        model = job.model
        for p in model.parameters():
            p.requires_grad_(True)
        trainable, total = count_params(model)
        history, sps = run_sft(model, job)
        model.save_pretrained(job.output_dir, safe_serialization=True)
        job.tokenizer.save_pretrained(job.output_dir)
        save_method_output(job.output_dir, base_name=job.base_name, artifact="weights")
        return TrainResult(model, "weights", trainable, total, history, sps)

    return Method(train)
