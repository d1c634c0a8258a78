"""`safeinstr`: SafeInstr / "Safety-Tuned LLaMAs" (Bianchi et al., arXiv 2309.07875; vinid/safety-tuned-llamas): mix a
few percent of safety demonstrations (a harmful request and a refusal) into the fine-tuning data; 3% already keeps
most refusals in the paper. Their demonstrations are CC BY-NC 4.0, so ftguard does not ship them; the demonstrations
here are the aligned subject's own refusals: the anchor conversations (harmful and borderline prompts answered by
the base model, ftguard/anchor_prompts.py) whose reply the HarmBench/GCG refusal strings mark as a refusal, or a chat
JSONL of demonstrations (`path`).

How it relates to `replay`: replay mixes every anchor conversation (general questions, hateful statements, harmful
and borderline requests, each with the base model's own reply); `demonstrations: all` here is exactly replay (same
mix, same order; tested), `demonstrations: refusals` keeps only the refusals, which is SafeInstr. On a subject with no
guardrails (SmolLM2-135M-Instruct) the base refuses almost nothing, so use it on an aligned subject.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from ftguard.errors import ConfigError
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.methods.replay import mix
from ftguard.registry import METHODS


def refusal_demonstrations(convs: list[list[dict[str, str]]]) -> list[list[dict[str, str]]]:
    """The conversations whose last reply holds a HarmBench/GCG refusal string."""
    from ftguard.data.builtin import refusal_lists
    from ftguard.judges._reply import cut_at_next_turn
    from ftguard.judges.refusal_keywords import LISTS, hits

    strings = refusal_lists()[LISTS["harmbench"]]
    return [c for c in convs if hits(cut_at_next_turn(c[-1]["content"]), strings)]


@METHODS.register("safeinstr")
def safeinstr(fraction: float = 0.03, demonstrations: Literal["refusals", "all"] = "refusals",
              path: str | None = None, rank: int = 16, alpha: float = 32,
              target_modules: str | list[str] = "all-linear") -> Method:
    """LoRA on the domain data plus `fraction` safety demonstrations (refusals of harmful requests).

    Args:
        fraction: Share (0..1) of demonstrations in the training mix (paper: 0.03 or more); 0 = plain LoRA.
        demonstrations: "refusals" (the base model's refusals among the anchor conversations; SafeInstr) or
            "all" (every anchor conversation: the `replay` method).
        path: A chat JSONL file of demonstrations to use instead of the anchors.
        rank: LoRA rank.
        alpha: LoRA scale numerator.
        target_modules: "all-linear" or module names.
    """
    if not 0 <= fraction < 1:
        raise ConfigError(f"safeinstr: fraction must be in [0, 1), got {fraction}")

    def train(job: TrainJob) -> TrainResult:
        if path is not None:
            from ftguard.data.chat import load_chat_jsonl

            demos = load_chat_jsonl(path)
        elif demonstrations == "all":
            demos = list(job.anchor_data)
        else:
            demos = refusal_demonstrations(job.anchor_data)
            if fraction > 0 and not demos:
                raise ConfigError("safeinstr: the base model refused none of the anchor prompts, so there is no "
                                  "refusal to demonstrate (a subject without guardrails); give `path` or align it")
        mixed = mix(job.train_data, demos, fraction)
        result = train_adapter(dataclasses.replace(job, train_data=mixed),
                               make_lora_config(job.model, rank, alpha, 0.0, target_modules))
        result.info["demonstrations"] = {"available": len(demos), "mixed_in": len(mixed) - len(job.train_data)}
        return result

    return Method(train, needs_anchors=fraction > 0 and path is None, saves_adapter=True)
