"""Fine-tuning methods; importing this package registers them all (one file per method, named as registered)."""

from ftguard.methods import (  # noqa: F401  (registration)
    constrained_sft,
    corda_kpm,
    dora,
    full,
    guard,
    hosted,
    lora,
    lora_null,
    osf,
    ptst,
    ref_kl,
    replay,
    safe_lora,
    safeinstr,
    salora,
)
from ftguard.methods.base import Method, TrainJob, TrainResult

__all__ = ["Method", "TrainJob", "TrainResult"]
