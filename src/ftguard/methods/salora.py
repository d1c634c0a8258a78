"""`salora`: SaLoRA (Li et al., arXiv 2501.01765, ICLR 2025; homles11/SaLoRA): LoRA with a fixed *safety module*
and a task-specific initialisation.

- Safety module: per adapted linear W, the outputs y = W x of the aligned model on safety data (harmful requests
  with the model's own refusals: the anchor conversations whose reply the HarmBench/GCG strings mark as a refusal,
  as `safeinstr` uses them) span a safety-critical subspace; U_s = its top `safety_rank` eigenvectors of E[y yᵀ],
  and C = I - U_s U_sᵀ is fixed. The update becomes C·B·A, so fine-tuning does not write into the features that
  produce refusals. Here C is kept by projecting B onto C's range after every optimizer step (guard's projector),
  which reaches exactly the updates C·B·A; under Adam the optimisation path differs from the paper's forward-pass C.
- Task-specific initialisation (`init: task`): A starts from the `rank` principal directions of the layer's inputs
  on the training conversations (rows scaled to the norm of PEFT's random A), B = 0, so the model is unchanged at
  step 0 and the adapter starts where the task's activations live. The paper initialises from an SVD of its own
  task features; this is the same idea, not its exact recipe.

Compared with guard: guard keeps A out of the *input* subspace of every anchor (general and safety) and adds a KL
term; SaLoRA keeps the update out of the *output* subspace of safety data only, at a fixed rank. `safety_rank: 0`
with `init: lora` is plain LoRA (tested).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch

from ftguard.errors import ConfigError
from ftguard.methods._subspace import (
    Projector,
    activation_covariances,
    lora_layers,
    top_eigenvectors,
)
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.methods.safeinstr import refusal_demonstrations
from ftguard.registry import METHODS

log = logging.getLogger(__name__)


@torch.no_grad()
def init_from_task(model: Any, covs: dict[str, tuple[torch.Tensor, Any]], rank: int) -> None:
    """A <- the top `rank` input directions of the task data (rows at the random init's norm); B stays 0."""
    memo: dict[int, torch.Tensor] = {}
    for name, layer in lora_layers(model).items():
        cov = covs[name][0]
        if id(cov) not in memo:
            memo[id(cov)] = top_eigenvectors(cov, rank)
        v = memo[id(cov)]  # (d_in, r)
        for key in layer.lora_A:
            a = layer.lora_A[key].weight  # (r, d_in)
            row = a.norm(dim=1).mean()
            a.zero_()
            a[: v.shape[1]] = (v.T * row).to(a.dtype).to(a.device)


@METHODS.register("salora")
def salora(rank: int = 16, alpha: float = 32, safety_rank: int = 32, init: Literal["task", "lora"] = "task",
           task_examples: int = 32, target_modules: str | list[str] = "all-linear") -> Method:
    """LoRA whose update C·B·A avoids the aligned model's output subspace on refusals (SaLoRA).

    Args:
        rank: LoRA rank.
        alpha: LoRA scale numerator.
        safety_rank: Dimension of the safety subspace U_s per layer (the paper's r_s); 0 = no safety module.
        init: "task" (A from the task inputs' principal directions) or "lora" (PEFT's random A).
        task_examples: Training conversations read for the task initialisation.
        target_modules: "all-linear" or module names.
    """
    if safety_rank < 0 or task_examples < 1:
        raise ConfigError(f"salora: safety_rank must be >= 0 and task_examples >= 1, got {safety_rank}, "
                          f"{task_examples}")

    def train(job: TrainJob) -> TrainResult:
        cfg = make_lora_config(job.model, rank, alpha, 0.0, target_modules)
        facts: dict[str, Any] = {}

        def prepare(model: Any) -> tuple[Any, list[Any]]:
            callbacks: list[Any] = []
            if init == "task":
                covs = activation_covariances(model, job.tokenizer, job.train_data[:task_examples], job.max_seq_len,
                                              outputs=False)
                init_from_task(model, covs, rank)
            if safety_rank:
                demos = refusal_demonstrations(job.anchor_data)
                if not demos:
                    raise ConfigError("salora: the base model refused none of the anchor prompts, so there is no "
                                      "safety data for the safety module (a subject without guardrails)")
                covs = activation_covariances(model, job.tokenizer, demos, job.max_seq_len, outputs=True)
                none = torch.zeros(0, 0)
                bases = {n: (none, top_eigenvectors(co, safety_rank)) for n, (_, co) in covs.items()}
                projector = Projector(model, bases)
                projector.project()
                callbacks.append(projector)
                facts["safety_data"] = len(demos)
                log.info("salora: safety module from %d refusal conversations, rank %d per layer", len(demos),
                         safety_rank)
            return None, callbacks

        result = train_adapter(job, cfg, prepare=prepare if init == "task" or safety_rank else None)
        result.info.update(facts)
        return result

    return Method(train, needs_anchors=safety_rank > 0, saves_adapter=True)
