"""`lora_null`: LoRA-Null (Tang et al., arXiv 2503.02659; HungerPWAY/LoRA-Null, built on CorDA's code): the adapter
starts in the null space of the input activations of pre-trained knowledge. Per adapted linear W (d_out x d_in):
C = E[x x^T] of its inputs on anchor conversations (ftguard's general and safety prompts answered by the base
model); N = the `rank` eigenvectors of C with the smallest eigenvalues (d_in x r); the adapter is initialised from
the SVD of W N N^T (B = U sqrt(S), A = sqrt(S) V^T, divided by the LoRA scale), and W N N^T is subtracted from the
frozen weight, so the model is unchanged at step 0 and A's rows span the directions anchor activations barely use:
A x ~ 0 for general inputs. `freeze_a: true` is the paper's LoRA-Null-v2 (A stays in the null space for good).

Compared with guard's `energy`: guard keeps A out of the top subspace at every step (projection), LoRA-Null only
starts there (and, with `freeze_a`, stays). The base weights are rewritten, so merged weights are saved.
`init: lora` is plain LoRA (random A, B = 0, no rewrite; tested).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import torch

from ftguard.errors import ConfigError
from ftguard.methods._subspace import activation_covariances, lora_layers, null_basis
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS

log = logging.getLogger(__name__)


@torch.no_grad()
def init_from_null_space(model: Any, covs: dict[str, tuple[torch.Tensor, Any]], rank: int,
                         freeze_a: bool) -> dict[str, float]:
    """Initialise every LoRA layer from W N N^T and subtract it from W (in place). Returns facts for the manifest."""
    memo: dict[int, torch.Tensor] = {}
    shares = []
    for name, layer in lora_layers(model).items():
        cov = covs[name][0]
        if id(cov) not in memo:
            memo[id(cov)] = null_basis(cov, rank)
        n = memo[id(cov)]
        base = layer.base_layer.weight
        w_null = base.float() @ n.to(base.device) @ n.to(base.device).T  # (d_out, d_in), rank <= r
        u, s, vh = torch.linalg.svd(w_null, full_matrices=False)
        for key in layer.lora_A:
            scale = layer.scaling[key]
            root = (s[:rank] / scale).sqrt()
            layer.lora_B[key].weight.copy_((u[:, :rank] * root).to(base.dtype))
            layer.lora_A[key].weight.copy_((root[:, None] * vh[:rank]).to(base.dtype))
            layer.lora_A[key].weight.requires_grad_(not freeze_a)
        base -= w_null.to(base.dtype)
        energy = torch.trace(n.T @ cov.float().to(n.device) @ n) / torch.trace(cov.float()).clamp(min=1e-12)
        shares.append(float(energy))
    log.info("lora_null: the adapters' input directions hold %.2e..%.2e of the anchor activation energy",
             min(shares), max(shares))
    return {"null_space_energy_max": max(shares), "null_space_energy_mean": sum(shares) / len(shares)}


@METHODS.register("lora_null")
def lora_null(rank: int = 16, alpha: float = 32, init: Literal["null", "lora"] = "null", freeze_a: bool = False,
              target_modules: str | list[str] = "all-linear") -> Method:
    """LoRA initialised in the null space of the anchor activations (LoRA-Null); `freeze_a` = LoRA-Null-v2.

    Args:
        rank: Adapter rank (the dimension of the null space used).
        alpha: LoRA scale numerator.
        init: "null" (the paper) or "lora" (plain LoRA initialisation: the method reduces to LoRA).
        freeze_a: Keep A fixed in the null space (LoRA-Null-v2).
        target_modules: "all-linear" or module names.
    """
    if init == "lora" and freeze_a:
        raise ConfigError("lora_null: freeze_a needs init: null (a frozen random A is not LoRA-Null)")

    def train(job: TrainJob) -> TrainResult:
        cfg = make_lora_config(job.model, rank, alpha, 0.0, target_modules)
        if init == "lora":
            return train_adapter(job, cfg)
        facts: dict[str, float] = {}

        def prepare(model: Any) -> tuple[Any, list[Any]]:
            covs = activation_covariances(model, job.tokenizer, job.anchor_data, job.max_seq_len, outputs=False)
            facts.update(init_from_null_space(model, covs, rank, freeze_a))
            return None, []

        result = train_adapter(job, cfg, prepare=prepare, save_merged=True)
        result.info.update(facts)
        return result

    return Method(train, needs_anchors=init == "null")
