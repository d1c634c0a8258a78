"""WiSE-FT for adapters (Wortsman et al. 2021): θ = θ₀ + α·ΔW, i.e. a trained LoRA adapter scaled by α.

PEFT's `rescale_adapter_scale` with a multiplier in [0, 1] is exactly WiSE-FT for LoRA, so one trained
adapter traces a whole learning/forgetting curve with no retraining (config: `wise_ft: {method: lora,
alphas: [0.25, 0.5, 0.75]}`; the report draws the curve on the trade-off plot).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftguard.config import ModelConfig
from ftguard.errors import ConfigError
from ftguard.models import METHOD_OUTPUT_FILE, load_model


def load_rescaled(folder: Path, base_cfg: ModelConfig, alpha: float) -> tuple[Any, Any]:
    """Base model plus the adapter saved in `folder`, scaled by `alpha` and merged."""
    from peft import PeftModel
    from peft.helpers import rescale_adapter_scale

    info = json.loads((folder / METHOD_OUTPUT_FILE).read_text())
    if info.get("artifact") != "adapter":
        raise ConfigError(f"wise_ft needs a method that saves a LoRA adapter; {folder.name} saved {info.get('artifact')}")
    base, tok = load_model(base_cfg)
    model = PeftModel.from_pretrained(base, str(folder))
    with rescale_adapter_scale(model, alpha):
        merged = model.merge_and_unload()
    return merged.eval(), tok
