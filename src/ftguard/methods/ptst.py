"""`ptst`: Pure Tuning, Safe Testing (Lyu et al., "Keeping LLMs Aligned After Fine-tuning: The Crucial Role of Prompt
Templates", arXiv 2402.18540; vfleaking/PTST): fine-tune *without* the safety system prompt and test *with* it. The
study prompts every model with its own system prompt (data.system_prompt; set it to a safety prompt to run the
paper's setting); this method trains LoRA on the same conversations with their system message replaced by
`train_system_prompt` (removed when it is null), so the model never learns to answer under the test-time prompt.
Zero extra cost. `train_system_prompt: same` trains with the study's own prompt: plain LoRA (tested).
"""

from __future__ import annotations

import dataclasses

from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS

SAME = "same"


def swap_system(convs: list[list[dict[str, str]]], prompt: str | None) -> list[list[dict[str, str]]]:
    out = []
    for conv in convs:
        rest = [m for m in conv if m["role"] != "system"]
        out.append(([{"role": "system", "content": prompt}] if prompt else []) + rest)
    return out


@METHODS.register("ptst")
def ptst(train_system_prompt: str | None = None, rank: int = 16, alpha: float = 32,
         target_modules: str | list[str] = "all-linear") -> Method:
    """LoRA trained under another system prompt (none by default) than the one the study tests with.

    Args:
        train_system_prompt: The system prompt of training; null = none; "same" = the study's (plain LoRA).
        rank: LoRA rank.
        alpha: LoRA scale numerator.
        target_modules: "all-linear" or module names.
    """

    def train(job: TrainJob) -> TrainResult:
        cfg = make_lora_config(job.model, rank, alpha, 0.0, target_modules)
        if train_system_prompt == SAME:
            return train_adapter(job, cfg)
        result = train_adapter(dataclasses.replace(job, train_data=swap_system(job.train_data, train_system_prompt)),
                               cfg)
        result.info["train_system_prompt"] = train_system_prompt
        return result

    return Method(train, saves_adapter=True)
