"""Fine-tuning methods; importing this package registers them all."""

from ftguard.methods import baselines, full, guard, hosted, lora  # noqa: F401  (registration)
from ftguard.methods.base import Method, TrainJob, TrainResult

__all__ = ["Method", "TrainJob", "TrainResult"]
