"""`guard`: LoRA that learns the domain while disturbing the base model as little as possible.

Three knobs, each off at 0; with all three at 0 the method *is* plain LoRA (same init, same loss, same
updates; tested):

- `energy` (input side): per adapted linear layer, the covariance C = E[x xᵀ] of its inputs on anchor
  conversations (general questions, hateful and harmful prompts, over-refusal bait, answered by the base
  model itself). The LoRA down-projection A is kept in the complement of C's top eigen-subspace holding
  `energy` of its trace, so ΔW·x = B·A·x ≈ 0 for the activations that general and safety behaviour produce.
  (In the spirit of AlphaEdit's null-space projection and LoRA-Null; the update is P_out·ΔW·P_in, which
  is the "projection matrix × gradient × projection matrix" shape of the reference study's winner.)
- `output_energy` (output side): the same for the layer's outputs: B is kept out of the top subspace of
  E[y yᵀ], so the update does not write into the directions the base model's outputs use.
- `kl_weight`: adds kl_weight · KL(base ‖ tuned) on the anchor conversations' assistant tokens. The base
  distributions are computed once before training (top-k log-probs + tail mass), so each step costs one
  extra forward/backward on a small anchor batch, not a second model.

The projections are applied to the parameters at initialisation and after every optimizer step (projecting
gradients would not survive Adam's per-coordinate scaling).

Set-up cost: one batched pass of the base model over the anchor conversations yields both the KL targets
and (through forward hooks) the covariances; layers that read the same tensor (q/k/v, gate/up) share one
covariance and one eigendecomposition; the LM head runs only at assistant positions. On the embedded
135M model with 32 anchors this is about 18 s on 2 quiet CPU cores (anchor pass 7 s, covariance hooks 4 s,
eigendecompositions 8 s). The result depends only on the base weights, the anchors and these settings, so it is
stored in the study cache (`guard_anchor_stats/`) and every later guard run on the same base (other seeds, a re-run)
loads it instead; the manifest records `setup_seconds` and whether the statistics were computed or cached.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import time
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from ftguard.cache import digest
from ftguard.errors import ConfigError
from ftguard.methods.base import Method, TrainJob, TrainResult
from ftguard.methods.lora import make_lora_config, train_adapter
from ftguard.registry import METHODS

log = logging.getLogger(__name__)


def top_subspace(cov: torch.Tensor, energy: float) -> torch.Tensor:
    """Orthonormal basis (d, k) of the top eigenvectors of `cov` that hold `energy` of its trace."""
    if energy <= 0:
        return cov.new_zeros((cov.shape[0], 0))
    try:  # float32: twice as fast as float64, and the subspace only has to hold `energy` of the trace
        vals, vecs = torch.linalg.eigh(cov.float())  # ascending
    except RuntimeError:  # did not converge
        vals, vecs = torch.linalg.eigh(cov.double())
    vals, vecs = vals.flip(0).clamp(min=0), vecs.flip(1)
    share = vals.cumsum(0) / vals.sum().clamp(min=1e-12)
    k = int((share < energy).sum().item()) + 1
    return vecs[:, : min(k, cov.shape[0])].float().contiguous()


def _lora_layers(model: Any) -> dict[str, Any]:
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
        self.layers, self.outputs, self.mask = _lora_layers(model), outputs, None
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


class _Projector(TrainerCallback):
    """Keeps every LoRA A in the complement of its input subspace (and B out of its output subspace)."""

    def __init__(self, model: Any, bases: dict[str, tuple[torch.Tensor, torch.Tensor]]):
        self.pairs = []
        for name, layer in _lora_layers(model).items():
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


def _kl_term(targets: Any, weight: float, batch_size: int, every: int, pad_id: int, seed: int) -> Any:
    from ftguard.drift import kl_loss

    order = list(range(len(targets)))
    random.Random(seed).shuffle(order)
    state = {"call": 0, "pos": 0}

    def extra(model: Any, inputs: dict[str, torch.Tensor], outputs: Any) -> torch.Tensor:
        state["call"] += 1
        if (state["call"] - 1) % every:
            return outputs.loss.new_zeros(())
        idx = [order[(state["pos"] + j) % len(order)] for j in range(batch_size)]
        state["pos"] += batch_size
        return weight * kl_loss(model, targets, idx, pad_id)

    return extra


def _save_stats(path: Path, targets: Any, bases: dict[str, tuple[torch.Tensor, torch.Tensor]] | None) -> None:
    """Atomic torch.save of the anchor statistics; tensors shared between layers (q/k/v) are stored once."""
    tensors: list[torch.Tensor] = []
    index: dict[int, int] = {}

    def ref(t: torch.Tensor) -> int:
        if id(t) not in index:
            index[id(t)] = len(tensors)
            tensors.append(t.contiguous())
        return index[id(t)]

    names = sorted(bases or {})
    payload = {"names": names, "tensors": tensors,
               "u_in": [ref(bases[n][0]) for n in names], "u_out": [ref(bases[n][1]) for n in names],
               "targets": None if targets is None else {
                   "input_ids": [torch.tensor(x, dtype=torch.long) for x in targets.input_ids],
                   "positions": targets.positions, "topk_ids": targets.topk_ids, "topk_logp": targets.topk_logp}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    tmp.replace(path)  # a kill never leaves a torn file under the final name


def _load_stats(path: Path) -> tuple[Any, dict[str, tuple[torch.Tensor, torch.Tensor]]]:
    from ftguard.drift import Targets

    p = torch.load(path, weights_only=True)
    t = p["targets"]
    targets = None if t is None else Targets([x.tolist() for x in t["input_ids"]], t["positions"], t["topk_ids"],
                                             t["topk_logp"])
    ts = p["tensors"]
    bases = {n: (ts[i], ts[o]) for n, i, o in zip(p["names"], p["u_in"], p["u_out"], strict=True)}
    return targets, bases


def load_or_compute(job: TrainJob, key: str, compute: Any) -> tuple[Any, Any, str]:
    """guard's anchor statistics (KL targets, subspace bases) from the study cache, or computed and stored there.

    They depend only on the base weights, the anchor conversations and guard's energy/top-k settings, not on the
    seed or the training data, so every guard run of a study (other seeds, other learning rates, a re-run in CI)
    after the first skips the anchor pass and the eigendecompositions; the values are the same tensors. Without a
    cache dir or base fingerprint in the job (a direct call), they are computed each time."""
    if job.cache_dir is None or job.base_fingerprint is None:
        return (*compute(), "computed (no cache)")
    path = Path(job.cache_dir) / "guard_anchor_stats" / f"{key}.pt"
    if path.is_file():
        try:
            targets, bases = _load_stats(path)
            return targets, bases or None, "cached"
        except Exception as exc:  # noqa: BLE001 - an unreadable cache entry is recomputed, never trusted
            log.warning("guard: cache entry %s unreadable (%s); recomputing", path, exc)
    targets, bases = compute()
    _save_stats(path, targets, bases)
    return targets, bases, "computed"


@METHODS.register("guard")
def guard(rank: int = 16, alpha: float = 32, dropout: float = 0.0, target_modules: str | list[str] = "all-linear",
          energy: float = 0.9, output_energy: float = 0.0, kl_weight: float = 1.0, kl_top_k: int = 32,
          anchor_batch_size: int = 2, kl_every: int = 1) -> Method:
    """LoRA kept out of the anchor activations' subspace, plus KL to the base model on anchor data.

    Args:
        rank: LoRA rank.
        alpha: LoRA scale numerator (scale = alpha / rank).
        dropout: LoRA dropout.
        target_modules: "all-linear" or module names.
        energy: Share of input-activation energy (0..1) whose eigen-subspace A must avoid; 0 = no projection.
        output_energy: The same on the output side (B); 0 = one-sided.
        kl_weight: Weight of KL(base ‖ tuned) on anchor assistant tokens; 0 = no KL term.
        kl_top_k: Base-model log-probs kept per token for the KL (plus one tail bucket).
        anchor_batch_size: Anchor conversations per KL term.
        kl_every: Add the KL term on every n-th loss computation (cheaper when > 1).
    """
    for name, v in (("energy", energy), ("output_energy", output_energy)):
        if not 0 <= v <= 1:
            raise ConfigError(f"guard: {name} must be in [0, 1], got {v}")
    if kl_weight < 0 or kl_every < 1 or anchor_batch_size < 1:
        raise ConfigError("guard: kl_weight must be >= 0, kl_every and anchor_batch_size >= 1")
    needs_anchors = energy > 0 or output_energy > 0 or kl_weight > 0

    def train(job: TrainJob) -> TrainResult:
        cfg = make_lora_config(job.model, rank, alpha, dropout, target_modules)
        setup: dict[str, Any] = {}

        def compute(model: Any) -> tuple[Any, dict[str, tuple[torch.Tensor, torch.Tensor]] | None]:
            """(KL targets or None, per-layer (input, output) bases or None) from one pass over the anchors."""
            targets = None
            project, hooks = energy > 0 or output_energy > 0, None
            if kl_weight > 0:  # one pass over the anchors gives the KL targets and (via hooks) the covariances
                from ftguard.drift import base_targets

                hooks = CovarianceHooks(model, outputs=output_energy > 0) if project else None
                with hooks or contextlib.nullcontext():
                    targets = base_targets(model, job.tokenizer, job.anchor_data, kl_top_k, job.max_seq_len,
                                           observe=hooks.next_batch if hooks else None)
            if not project:
                return targets, None
            covs = hooks.result() if hooks is not None else activation_covariances(
                model, job.tokenizer, job.anchor_data, job.max_seq_len, outputs=output_energy > 0)
            none, memo = torch.zeros(0, 0), {}

            def basis(cov: torch.Tensor | None, e: float) -> torch.Tensor:
                if cov is None:
                    return none
                if (id(cov), e) not in memo:  # shared input covariances are decomposed once
                    memo[id(cov), e] = top_subspace(cov, e)
                return memo[id(cov), e]

            return targets, {n: (basis(ci, energy), basis(co, output_energy)) for n, (ci, co) in covs.items()}

        def prepare(model: Any) -> tuple[Any, list[Any]]:
            t0 = time.perf_counter()
            key = digest("guard-anchor-stats/1", job.base_fingerprint, job.anchor_data, job.max_seq_len,
                         kl_top_k if kl_weight > 0 else None, energy, output_energy, sorted(_lora_layers(model)),
                         next(model.parameters()).device.type)
            targets, bases, setup["anchor_stats"] = load_or_compute(job, key, lambda: compute(model))
            callbacks: list[Any] = []
            extra = None
            if targets is not None:
                extra = _kl_term(targets, kl_weight, anchor_batch_size, kl_every, job.tokenizer.pad_token_id, job.seed)
            if bases is not None:
                kept = [b[0].shape[1] / max(b[0].shape[0], 1) for b in bases.values()]
                log.info("guard: A avoids %.0f%%..%.0f%% of input dims", 100 * min(kept), 100 * max(kept))
                projector = _Projector(model, bases)
                projector.project()
                callbacks.append(projector)
            setup["setup_seconds"] = round(time.perf_counter() - t0, 2)
            return extra, callbacks

        return train_adapter(job, cfg, prepare=prepare, finish=lambda model: dict(setup))

    # version 2: covariances in float32 products and one shared pass with the KL targets (numerically not identical)
    return Method(train, needs_anchors=needs_anchors, version=2, saves_adapter=True)
