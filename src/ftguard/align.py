"""The alignment stage: make the subject refuse harmful requests and push back on hate before the study fine-tunes
it, so there is safety to lose (the two-stage protocol of Vaccine, Lisa, Booster and SafeTuneBed: align, then
fine-tune on benign data, then measure).

    ftguard align configs/quick.yaml            # build (or find) the aligned model of the config's `align:`
    # in a config: align: {data: builtin:safety_alignment, steps: 120}   (ftguard run applies it first)

Supervised: a LoRA adapter trained with TRL's SFTTrainer on prompt/completion pairs (loss on the completion
only), merged into the weights and saved as the study's base model under the cache, keyed by the base weights,
the data and every setting (a re-run reuses it). The shipped data (builtin:safety_alignment,
assets/data/safety_alignment, made by scripts/build_alignment_data.py) are refusals, counter-speech and plain
answers distilled from an aligned teacher on prompts no probe uses (pools.py; tested).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from ftguard.cache import digest
from ftguard.config import AlignConfig, ModelConfig, cache_dir
from ftguard.data.builtin import BUILTIN_DATA
from ftguard.errors import DataError
from ftguard.results import write_json

log = logging.getLogger(__name__)
BUILTIN = {"builtin:safety_alignment": BUILTIN_DATA / "safety_alignment" / "safety_alignment.jsonl"}
DONE = "alignment.json"


def load_alignment_data(spec: str) -> list[list[dict[str, str]]]:
    """Conversations (chat messages, an assistant reply last) of a builtin set or a chat JSONL file."""
    from ftguard.data.chat import load_chat_jsonl

    if spec.startswith("builtin:"):
        if spec not in BUILTIN:
            raise DataError(f"unknown builtin alignment data {spec!r}; available: {', '.join(BUILTIN)}")
        return load_chat_jsonl(BUILTIN[spec])
    return load_chat_jsonl(spec)


def alignment_key(base: ModelConfig, align: AlignConfig, convs: list[list[dict[str, str]]]) -> str:
    from ftguard.models import model_fingerprint

    return digest("align", model_fingerprint(base), convs, align.model_dump(), 1)


def aligned_model_config(base: ModelConfig, align: AlignConfig) -> tuple[ModelConfig, dict[str, Any]]:
    """The ModelConfig of the aligned subject (trained now if not cached) and its record for the manifest."""
    convs = load_alignment_data(align.data)
    key = alignment_key(base, align, convs)
    folder = cache_dir(base) / "aligned" / key
    done = folder / DONE
    if not done.exists():
        train_alignment(base, align, convs, folder)
    record = json.loads(done.read_text())
    return base.model_copy(update={"name_or_path": str(folder), "sha256": None}), record


def train_alignment(base: ModelConfig, align: AlignConfig, convs: list[list[dict[str, str]]], folder: Path) -> None:
    """LoRA SFT with TRL on `convs` (the last assistant turn is the completion), merged and saved in `folder`."""
    import datasets
    import torch
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    from ftguard.models import load_model, save_method_output

    model, tok = load_model(base)
    rows = [{"prompt": c[:-1], "completion": c[-1:]} for c in convs]
    args = SFTConfig(output_dir=str(folder / "trainer"), max_steps=align.steps, per_device_train_batch_size=align.batch_size,
                     learning_rate=align.lr, lr_scheduler_type="cosine", warmup_steps=round(align.warmup_ratio * align.steps),
                     logging_steps=max(1, align.steps // 10), save_strategy="no", report_to=[], seed=align.seed,
                     data_seed=align.seed, max_length=align.max_seq_len, completion_only_loss=True,
                     use_cpu=not torch.cuda.is_available(), dataloader_num_workers=0, bf16=False, fp16=False,
                     gradient_checkpointing=False)  # TRL turns it on by default: twice the compute for memory we have
    peft_config = LoraConfig(r=align.rank, lora_alpha=align.alpha, target_modules="all-linear", task_type="CAUSAL_LM")
    torch.manual_seed(align.seed)
    t0 = time.perf_counter()
    trainer = SFTTrainer(model=model, args=args, train_dataset=datasets.Dataset.from_list(rows), processing_class=tok,
                         peft_config=peft_config)
    trainer.train()
    seconds = time.perf_counter() - t0
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir(parents=True, exist_ok=True)
    trainer.model.save_pretrained(tmp / "adapter")  # the small artifact (an embedded aligned subject ships one)
    merged = trainer.model.merge_and_unload().eval()
    merged.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    save_method_output(tmp, base_name=base.name_or_path, artifact="weights")
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    write_json(tmp / DONE, {"base": base.name_or_path, "data": align.data, "conversations": len(convs),
                            "settings": align.model_dump(), "train_seconds": round(seconds, 1),
                            "first_loss": losses[0] if losses else None, "last_loss": losses[-1] if losses else None})
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.replace(folder)
    log.info("aligned model saved in %s (%.0f s)", folder, seconds)
