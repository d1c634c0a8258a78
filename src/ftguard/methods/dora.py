"""`dora`: weight-decomposed LoRA (Liu et al. 2024, arXiv 2402.09353), PEFT `use_dora=True`, through the shared
loop. With the magnitude vector frozen at its initial value it is LoRA on the weight direction."""

from __future__ import annotations

from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS


@METHODS.register("dora")
def dora(rank: int = 16, alpha: float = 32, dropout: float = 0.0, target_modules: str | list[str] = "all-linear") -> Method:
    """DoRA: LoRA on the direction of each weight plus a trained magnitude vector."""

    def train(job: TrainJob) -> TrainResult:
        return train_adapter(job, make_lora_config(job.model, rank, alpha, dropout, target_modules, use_dora=True))

    return Method(train, saves_adapter=True)
