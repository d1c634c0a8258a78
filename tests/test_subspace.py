"""The one eigendecomposition behind guard's, salora's and lora_null's subspaces (methods/_subspace.py)."""

import torch

from ftguard.methods._subspace import (
    eigh_descending,
    null_basis,
    top_eigenvectors,
    top_subspace,
)


def spd(d: int = 24, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    vals = torch.logspace(2, -4, d, dtype=torch.float64)  # distinct, descending
    return (q * vals) @ q.T, vals


def test_eigh_descending_orders_values_and_vectors_together_in_both_precisions() -> None:
    cov, vals = spd()
    for precise in (False, True):
        got_vals, vecs = eigh_descending(cov, precise=precise)
        assert vecs.dtype == torch.float32 and torch.all(got_vals[:-1] >= got_vals[1:])
        assert torch.allclose(got_vals.double(), vals, rtol=1e-3, atol=1e-5)
        rayleigh = ((vecs.double().T @ cov) * vecs.double().T).sum(1)
        assert torch.allclose(rayleigh[:5], vals[:5], rtol=1e-3)


def test_top_subspace_null_basis_and_top_eigenvectors_pick_the_right_ends_of_the_spectrum() -> None:
    cov, vals = spd()
    share = (vals.cumsum(0) / vals.sum())
    u = top_subspace(cov, 0.999)
    assert u.shape[1] == int((share < 0.999).sum()) + 1  # the fewest top directions holding 99.9% of the trace
    assert top_subspace(cov, 0.0).shape == (24, 0)
    top = top_eigenvectors(cov, 3).double()
    null = null_basis(cov, 3).double()
    assert torch.allclose(((top.T @ cov) * top.T).sum(1), vals[:3], rtol=1e-6)
    assert torch.allclose(((null.T @ cov) * null.T).sum(1), vals.flip(0)[:3], rtol=1e-4)  # smallest first
    assert top_eigenvectors(cov, 100).shape == (24, 24) and top_eigenvectors(cov, 0).shape == (24, 0)
