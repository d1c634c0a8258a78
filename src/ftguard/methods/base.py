"""The Method contract: a factory returns a `Method`, a frozen value that states what the method needs from
the pipeline (anchors? local weights?) next to the function that trains, so a forgotten flag is a type
error, not a silently empty anchor set.

    @METHODS.register("lora")
    def lora(rank: int = 16) -> Method:
        def train(job: TrainJob) -> TrainResult: ...
        return Method(train)

    @METHODS.register("replay")
    def replay(fraction: float = 0.2) -> Method:
        return Method(train, needs_anchors=fraction > 0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftguard.config import TrainConfig
from ftguard.errors import ConfigError


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
    allow_paid: bool = False  # `ftguard run --yes`: hosted methods may submit paid jobs
    system_prompt: str | None = None  # the system prompt the study prompts with (training data carry it)
    cache_dir: Path | None = None  # the study's content-addressed cache (methods may keep base-model statistics there)
    base_fingerprint: str | None = None  # identity of the base weights (ftguard.models.model_fingerprint)


@dataclass
class TrainResult:
    model: Any  # a plain PreTrainedModel (adapters merged) ready for generation
    artifact: str  # "adapter", "weights" or "endpoint": what was saved in output_dir
    trainable_params: int | None
    total_params: int | None
    log_history: list[dict[str, Any]] = field(default_factory=list)
    seconds_per_step: float | None = None
    info: dict[str, Any] = field(default_factory=dict)  # method-specific facts for the manifest


@dataclass(frozen=True)
class Method:
    train: Callable[[TrainJob], TrainResult]
    needs_anchors: bool = False  # the pipeline builds anchor data only when asked, and keys the model on them
    version: int = 1  # bump when training changes (not just gets faster), so cached models are not reused
    trains_locally: bool = True  # False: trains on a service; the study's base model may then be served
    key_ignores: tuple[str, ...] = ()  # params that cannot change the trained model (prices, polling)
    saves_adapter: bool = False  # it saves a LoRA adapter on the base weights (WiSE-FT can rescale it)
    hosted: Any = None  # hosted methods: the HostedMethod, for the dry run's plan

    def __call__(self, job: TrainJob) -> TrainResult:
        if self.needs_anchors and not job.anchor_data:
            raise ConfigError("this method needs anchor data and the pipeline gave none: set anchors.n > 0")
        return self.train(job)
