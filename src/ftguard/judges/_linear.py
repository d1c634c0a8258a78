"""A small softmax (multinomial logistic) classifier over fixed features, stored as safetensors (no pickle).

ASSETS holds the shipped weights. Used by the learnt offline judges (`safety_classifier`, `knowledge_classifier`); their training script is
scripts/train_judge_classifiers.py. Features are standardised with the training mean and std, which are saved
with the weights.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import ftguard
from ftguard.errors import JudgeError

ASSETS = Path(ftguard.__file__).parent / "assets" / "judges"


def fit(x: Any, y: Any, n_classes: int, weight: Any = None, l2: float = 1e-2, steps: int = 500,
        seed: int = 0) -> dict[str, Any]:
    """Fit by full-batch L-BFGS; returns the tensors to save (W, b, mean, std)."""
    import torch

    torch.manual_seed(seed)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    z = (x - mean) / std
    w = torch.zeros(x.shape[1], n_classes, requires_grad=True)
    b = torch.zeros(n_classes, requires_grad=True)
    sw = torch.ones(len(y)) if weight is None else weight
    opt = torch.optim.LBFGS([w, b], max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = (torch.nn.functional.cross_entropy(z @ w + b, y, reduction="none") * sw).sum() / sw.sum()
        loss = loss + l2 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return {"W": w.detach().contiguous(), "b": b.detach().contiguous(), "mean": mean.contiguous(),
            "std": std.contiguous()}


def proba(params: dict[str, Any], x: Any) -> Any:
    import torch

    return torch.softmax(((x - params["mean"]) / params["std"]) @ params["W"] + params["b"], dim=-1)


def save(path: Path, params: dict[str, Any], meta: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(params, str(path), metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()})


@lru_cache(maxsize=4)
def load(path: str) -> tuple[dict[str, Any], dict[str, str]]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    if not Path(path).is_file():
        raise JudgeError(f"{path}: judge weights missing; rebuild with scripts/train_judge_classifiers.py")
    with safe_open(path, "pt") as f:
        meta = dict(f.metadata() or {})
    return load_file(path), meta


def predict(path: Path, x: Any, labels: Sequence[str]) -> list[tuple[str, float]]:
    """(most probable label, its probability) per row of features `x`, with the weights saved at `path`."""
    params, _ = load(str(path))
    p = proba(params, x)
    return [(labels[int(row.argmax())], float(row.max())) for row in p]
