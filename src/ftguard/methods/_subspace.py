"""Activation subspaces of a LoRA model's adapted layers, shared by guard, lora_null and salora.

`CovarianceHooks` / `activation_covariances` measure E[x xᵀ] (and E[y yᵀ]) of every adapted layer's base linear on
some conversations; `eigh_descending` is the one eigendecomposition behind `top_subspace` (guard: the directions
holding a share of the trace), `top_eigenvectors` (salora) and `null_basis` (lora_null); `Projector` keeps LoRA
factors out of given subspaces after every optimizer step.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import TrainerCallback


def eigh_descending(cov: torch.Tensor, precise: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigenvalues (descending, clamped at 0) and eigenvectors (columns, same order) of a symmetric PSD matrix.

    precise=False decomposes in float32 (twice as fast; enough for a subspace that holds a share of the trace) and
    falls back to float64 when that does not converge; precise=True is float64 throughout (the smallest
    eigenvectors, which lora_null uses, need it). Vectors are returned as float32."""
    if precise:
        vals, vecs = torch.linalg.eigh(cov.double())  # ascending
    else:
        try:
            vals, vecs = torch.linalg.eigh(cov.float())
        except RuntimeError:  # did not converge
            vals, vecs = torch.linalg.eigh(cov.double())
    return vals.flip(0).clamp(min=0), vecs.flip(1).float().contiguous()


def top_subspace(cov: torch.Tensor, energy: float) -> torch.Tensor:
    """Orthonormal basis (d, k) of the top eigenvectors of `cov` that hold `energy` of its trace."""
    if energy <= 0:
        return cov.new_zeros((cov.shape[0], 0))
    vals, vecs = eigh_descending(cov)
    share = vals.cumsum(0) / vals.sum().clamp(min=1e-12)
    k = int((share < energy).sum().item()) + 1
    return vecs[:, : min(k, cov.shape[0])].contiguous()


def top_eigenvectors(cov: torch.Tensor, k: int) -> torch.Tensor:
    """(d, min(k, d)): eigenvectors of the k largest eigenvalues of `cov` (float64 decomposition)."""
    k = min(k, cov.shape[0])
    return eigh_descending(cov, precise=True)[1][:, :k].contiguous() if k else cov.new_zeros((cov.shape[0], 0)).float()


def null_basis(cov: torch.Tensor, rank: int) -> torch.Tensor:
    """(d, rank): eigenvectors of the `rank` smallest eigenvalues of `cov`, smallest first (float64 decomposition)."""
    return eigh_descending(cov, precise=True)[1].flip(1)[:, :rank].contiguous()


def lora_layers(model: Any) -> dict[str, Any]:
    from peft.tuners.lora import LoraLayer

    return {name: m for name, m in model.named_modules() if isinstance(m, LoraLayer)}


class CovarianceHooks:
    """Forward hooks that accumulate E[x xᵀ] (and E[y yᵀ]) of every LoRA layer's base linear.

        with CovarianceHooks(model, outputs=False) as hooks:
            hooks.next_batch(attention_mask); model(...)     # rows where mask == 0 are left out
        covs = hooks.result()                                # name -> (input cov, output cov or None)

    Layers that read the same tensor (q/k/v, gate/up) share one input covariance: it is accumulated once and
    the same tensor object is returned for each of them, so callers can decompose it once too. Products are
    float32 per batch, summed in float64.
    """

    def __init__(self, model: Any, outputs: bool):
        self.layers, self.outputs, self.mask = lora_layers(model), outputs, None
        self.acc: dict[str, list[Any]] = {n: [None, None, 0] for n in self.layers}
        self.alias: dict[str, str] = {}  # layer -> the first layer seen reading the same input tensor
        self._seen: dict[int, tuple[torch.Tensor, str]] = {}  # id(input) -> (input, layer), within one forward
        self._hooks: list[Any] = []

    def _rows(self, t: torch.Tensor) -> torch.Tensor:
        m = t.reshape(-1, t.shape[-1])
        if self.mask is not None:
            m = m[self.mask.reshape(-1).to(m.device).bool()]
        return m.float()

    def _add(self, a: list[Any], i: int, t: torch.Tensor) -> None:
        m = self._rows(t)
        prod = (m.T @ m).double()
        a[i] = prod if a[i] is None else a[i] + prod
        if i == 0:
            a[2] += m.shape[0]

    def _hook(self, name: str) -> Any:
        def hook(mod, inp, out):  # noqa: ANN001
            x, a = inp[0], self.acc[name]
            first = self._seen.get(id(x))
            if first is not None and first[0] is x:
                self.alias[name] = first[1]
            else:
                self._seen[id(x)] = (x, name)
                self._add(a, 0, x)
            if self.outputs:
                self._add(a, 1, out)
        return hook

    def next_batch(self, attention_mask: torch.Tensor | None) -> None:
        """Call before each forward pass: its padding mask, and a fresh record of which layers share inputs."""
        self.mask = attention_mask
        self._seen.clear()

    def __enter__(self) -> CovarianceHooks:
        self._hooks = [layer.base_layer.register_forward_hook(self._hook(n)) for n, layer in self.layers.items()]
        return self

    def __exit__(self, *exc: Any) -> None:
        for h in self._hooks:
            h.remove()
        self._seen.clear()

    def result(self) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        own = {n: a for n, a in self.acc.items() if n not in self.alias}
        if not own or any(a[2] == 0 for a in own.values()):
            raise ValueError("no anchor tokens reached the adapted layers")
        covs = {n: a[0] / a[2] for n, a in own.items()}
        return {n: (covs[self.alias.get(n, n)], a[1] / own[self.alias.get(n, n)][2] if self.outputs else None)
                for n, a in self.acc.items()}


@torch.no_grad()
def activation_covariances(model: Any, tok: Any, conversations: list[list[dict[str, str]]], max_len: int,
                           outputs: bool, batch_size: int = 8) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """(input covariance, output covariance or None) of every LoRA layer's base linear on the conversations."""
    from ftguard.data.tokenize import collate, tokenize_conversation

    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    seqs = [tokenize_conversation(tok, c)[0][:max_len] for c in conversations]
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with CovarianceHooks(model, outputs) as hooks:
            for start in range(0, len(seqs), batch_size):
                batch = collate(pad)([{"input_ids": s, "labels": s} for s in seqs[start:start + batch_size]])
                hooks.next_batch(batch["attention_mask"])
                model(input_ids=batch["input_ids"].to(device), attention_mask=batch["attention_mask"].to(device))
    finally:
        model.train(was_training)
    return hooks.result()


class Projector(TrainerCallback):
    """Keeps every LoRA A in the complement of its input subspace (and B out of its output subspace)."""

    def __init__(self, model: Any, bases: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        self.pairs = []
        for name, layer in lora_layers(model).items():
            u_in, u_out = bases[name]
            for key in layer.lora_A:
                self.pairs.append((layer.lora_A[key].weight, layer.lora_B[key].weight, u_in, u_out))

    @torch.no_grad()
    def project(self) -> None:
        for a, b, u_in, u_out in self.pairs:
            if u_in.shape[1]:
                u = u_in.to(a.device)
                a -= (a @ u) @ u.T  # A: (r, d_in)
            if u_out.shape[1]:
                u = u_out.to(b.device)
                b -= u @ (u.T @ b)  # B: (d_out, r)

    def on_step_end(self, args, state, control, **kw):  # noqa: ANN001
        self.project()
