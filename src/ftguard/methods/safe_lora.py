"""`safe_lora`: Safe LoRA (Hsu et al., arXiv 2405.16833; IBM/SafeLoRA): train LoRA as usual, then, per adapted layer,
compare its update dW = s·B·A with its projection onto the layer's "alignment matrix" V = W_aligned - W_unaligned,
C = V V^T / ||V||_F (the paper's approximate projection); where the two are dissimilar (cosine of dW and C dW below
`threshold`), the update is replaced by C dW, i.e. B <- C B. No data and no training cost; it needs the subject's
pre-alignment weights (`unaligned`: for ftguard's aligned SmolLM2 subject that is SmolLM2-135M-Instruct itself).

`num_layers` projects the k least similar layers instead (the paper's other selection rule). `threshold: 0` (and no
num_layers) projects nothing: plain LoRA (tested). The adapter is still rank r, so it is saved as an adapter.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ftguard.errors import ConfigError
from ftguard.methods._subspace import lora_layers
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS

log = logging.getLogger(__name__)
PREFIX = "base_model.model."


def unaligned_weights(name_or_path: str) -> dict[str, torch.Tensor]:
    from ftguard.config import ModelConfig
    from ftguard.models import load_model

    model, _ = load_model(ModelConfig(name_or_path=name_or_path))
    if model is None or not hasattr(model, "state_dict"):
        raise ConfigError(f"safe_lora: unaligned model {name_or_path!r} has no local weights (an endpoint?)")
    return {k: v.detach().float().cpu() for k, v in model.state_dict().items()}


@torch.no_grad()
def project_updates(model: Any, unaligned: dict[str, torch.Tensor], threshold: float,
                    num_layers: int | None) -> dict[str, Any]:
    """Safe LoRA's post-hoc projection on a trained PEFT model, in place; returns what it did."""
    sims, plan = {}, {}
    for name, layer in lora_layers(model).items():
        key = name.removeprefix(PREFIX) + ".weight"
        aligned = layer.base_layer.weight.float()
        if key not in unaligned or unaligned[key].shape != aligned.shape:
            raise ConfigError(f"safe_lora: the unaligned model has no weight {key!r} of shape {tuple(aligned.shape)}; "
                              "it must be the same architecture as the subject (its pre-alignment version)")
        v = aligned - unaligned[key].to(aligned.device)
        norm = torch.linalg.matrix_norm(v)
        if norm == 0:
            sims[name] = 1.0  # nothing was aligned here: nothing to project onto
            continue
        c = v @ v.T / norm
        for k in layer.lora_A:
            s = layer.scaling[k]
            dw = s * layer.lora_B[k].weight.float() @ layer.lora_A[k].weight.float()
            proj = c @ dw
            sims[name] = float((dw * proj).sum() / (torch.linalg.matrix_norm(dw) * torch.linalg.matrix_norm(proj))
                               .clamp(min=1e-12))
            plan[name] = (layer, k, c)
    if num_layers is not None:
        chosen = sorted((n for n in plan), key=lambda n: sims[n])[:num_layers]
    else:
        chosen = [n for n in plan if sims[n] < threshold]
    for n in chosen:
        layer, k, c = plan[n]
        b = layer.lora_B[k].weight
        b.copy_((c.to(b.device) @ b.float()).to(b.dtype))
    log.info("safe_lora: projected %d of %d layers (cosine with the alignment projection %.2f..%.2f)",
             len(chosen), len(sims), min(sims.values(), default=0), max(sims.values(), default=0))
    return {"projected_layers": len(chosen), "layers": len(sims), "threshold": threshold,
            "similarity_min": min(sims.values(), default=None), "similarity_max": max(sims.values(), default=None)}


@METHODS.register("safe_lora")
def safe_lora(unaligned: str, threshold: float = 0.5, num_layers: int | None = None, rank: int = 16,
              alpha: float = 32, target_modules: str | list[str] = "all-linear") -> Method:
    """LoRA, then Safe LoRA's projection of dissimilar layers onto the alignment direction W_aligned - W_unaligned.

    Args:
        unaligned: The subject's pre-alignment model (hub id, folder, .gguf or embedded:NAME).
        threshold: Project a layer when the cosine of dW and C·dW is below this (paper: 0.35..0.5); 0 = none.
        num_layers: Instead, project the k layers with the lowest cosine.
        rank: LoRA rank.
        alpha: LoRA scale numerator.
        target_modules: "all-linear" or module names.
    """
    if not 0 <= threshold <= 1 or (num_layers is not None and num_layers < 0):
        raise ConfigError(f"safe_lora: threshold must be in [0, 1] and num_layers >= 0, got {threshold}, {num_layers}")

    def train(job: TrainJob) -> TrainResult:
        cfg = make_lora_config(job.model, rank, alpha, 0.0, target_modules)
        if threshold == 0 and not num_layers:
            return train_adapter(job, cfg)
        weights = unaligned_weights(unaligned)
        return train_adapter(job, cfg, finish=lambda model: project_updates(model, weights, threshold, num_layers))

    return Method(train, saves_adapter=True)
