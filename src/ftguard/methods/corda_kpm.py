"""`corda_kpm`: CorDA in knowledge-preserving mode (Yang et al. 2024, arXiv 2406.05223): the adapter is initialised
from the smallest components of W·C, C the input covariance on anchor data (PEFT `init_lora_weights="corda"`),
so training starts in the directions general behaviour uses least. Merged weights are saved, because CorDA
rewrites the base weights too.
"""

from __future__ import annotations

import torch

from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS


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

        from ftguard.data.tokenize import tokenize_conversation

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

    return Method(train, needs_anchors=True)
