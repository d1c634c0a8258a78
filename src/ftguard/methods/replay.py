"""`replay`: plain LoRA on the domain data mixed with anchor conversations (general and safety prompts answered
by the base model itself): rehearsal, the oldest answer to forgetting. `fraction: 0` is plain LoRA."""

from __future__ import annotations

from ftguard.errors import ConfigError
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS


def mix(train: list, extra: list, fraction: float) -> list:
    """`train` plus about `fraction` (of the mix) of `extra`, cycling through it (replay's and safeinstr's rule)."""
    n = round(len(train) * fraction / (1 - fraction))
    return list(train) + [extra[i % len(extra)] for i in range(n)] if extra else list(train)


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

        mixed = dataclasses.replace(job, train_data=mix(job.train_data, job.anchor_data, fraction))
        return train_adapter(mixed, make_lora_config(job.model, rank, alpha, 0.0, target_modules))

    return Method(train, needs_anchors=fraction > 0, saves_adapter=True)
