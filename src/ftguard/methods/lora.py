"""LoRA (Hu et al. 2021) through PEFT: low-rank adapters on the chosen linear layers, base weights frozen."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ftguard.errors import ConfigError
from ftguard.methods._sft import count_params, run_sft
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.models import save_method_output
from ftguard.registry import METHODS


def make_lora_config(model: Any, rank: int, alpha: float, dropout: float, target_modules: str | list[str],
                     **extra: Any) -> Any:
    from peft import LoraConfig

    if isinstance(target_modules, list):
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        missing = [t for t in target_modules if t not in names]
        if missing:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__ == "Linear"})
            raise ConfigError(f"LoRA target modules {missing} not found in {type(model).__name__}. "
                              f"Linear layers are named {linear}")
    return LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=target_modules,
                      task_type="CAUSAL_LM", **extra)


def train_adapter(job: TrainJob, peft_config: Any, prepare: Callable[[Any], tuple[Any, list[Any]]] | None = None,
                  save_merged: bool = False, finish: Callable[[Any], dict[str, Any]] | None = None) -> TrainResult:
    """Wrap, train, save the adapter, merge: shared by every adapter-based method.

    `prepare(peft_model) -> (extra_loss or None, trainer callbacks)` lets a method set up before training.
    `save_merged` saves full merged weights instead of the adapter (for methods such as CorDA and OSF that
    also rewrite the base weights, so the adapter alone cannot be re-applied to the original model).
    `finish(peft_model) -> info` runs after training, before saving (safe_lora's post-hoc projection); its
    dict goes to the manifest.
    """
    import torch
    from peft import get_peft_model

    torch.manual_seed(job.seed)  # the same adapter initialisation for every adapter method with this seed
    model = get_peft_model(job.model, peft_config)
    extra_loss, callbacks = prepare(model) if prepare else (None, [])
    trainable, total = count_params(model)
    history, sps = run_sft(model, job, extra_loss=extra_loss, callbacks=callbacks)
    info = finish(model) if finish else {}
    if not save_merged:
        model.save_pretrained(job.output_dir)
        save_method_output(job.output_dir, base_name=job.base_name, artifact="adapter")
        return TrainResult(model.merge_and_unload(), "adapter", trainable, total, history, sps, info)
    merged = model.merge_and_unload()
    merged.save_pretrained(job.output_dir, safe_serialization=True)
    job.tokenizer.save_pretrained(job.output_dir)
    save_method_output(job.output_dir, base_name=job.base_name, artifact="weights")
    return TrainResult(merged, "weights", trainable, total, history, sps, info)


@METHODS.register("lora")
def lora(rank: int = 16, alpha: float = 32, dropout: float = 0.0,
         target_modules: str | list[str] = "all-linear", use_rslora: bool = False, use_dora: bool = False) -> Method:
    """LoRA adapters on `target_modules`; base weights stay frozen and are merged at the end.

    Args:
        rank: Adapter rank; higher means more capacity and more memory.
        alpha: Scale numerator; the effective scale is alpha / rank (alpha / sqrt(rank) with rsLoRA).
        dropout: Dropout on the adapter input.
        target_modules: "all-linear" or a list of module names such as ["q_proj", "v_proj"].
        use_rslora: Rank-stabilised scaling.
        use_dora: Weight-decomposed LoRA (DoRA).
    """
    if rank < 1:
        raise ConfigError(f"lora rank must be >= 1, got {rank}")

    def train(job: TrainJob) -> TrainResult:
        cfg = make_lora_config(job.model, rank, alpha, dropout, target_modules, use_rslora=use_rslora, use_dora=use_dora)
        return train_adapter(job, cfg)

    return Method(train, saves_adapter=True)
