"""The Method contract: a factory returns a callable that fine-tunes `job.model` and returns the result."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ftguard.config import TrainConfig


@dataclass(frozen=True)
class TrainJob:
    model: Any  # PreTrainedModel, freshly loaded base weights; the method may modify it in place
    tokenizer: Any  # PreTrainedTokenizerBase with a chat template
    train_data: list[list[dict[str, str]]]  # conversations, chat messages each
    train: TrainConfig
    lr: float  # peak learning rate for this method
    seed: int
    max_seq_len: int
    output_dir: Path  # where the method saves what it produced (adapter or weights)
    base_name: str  # the base model's name_or_path, recorded so the output can be loaded back
    anchor_data: list[list[dict[str, str]]] = field(default_factory=list)  # general/safety prompts+base answers


@dataclass
class TrainResult:
    model: Any  # a plain PreTrainedModel (adapters merged) ready for generation
    artifact: str  # "adapter" or "weights": what was saved in output_dir
    trainable_params: int
    total_params: int
    log_history: list[dict[str, Any]] = field(default_factory=list)
    seconds_per_step: float | None = None


class Method(Protocol):
    def __call__(self, job: TrainJob, /) -> TrainResult: ...
