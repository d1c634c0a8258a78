"""Fine-tuning methods; importing this package registers them all (one file per method, named as registered)."""

from ftguard.methods import corda_kpm, dora, full, guard, hosted, lora, osf, replay  # noqa: F401  (registration)
from ftguard.methods.base import Method, TrainJob, TrainResult

__all__ = ["Method", "TrainJob", "TrainResult"]
