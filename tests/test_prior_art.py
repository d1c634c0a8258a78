"""guard's closest published relatives as methods (issue "prior-art"): each reduces to LoRA at its documented
setting, and each does what its paper says on the tiny model."""

from __future__ import annotations

import json

import pytest
import torch
from test_methods import ANCHORS, job_for, snapshot

import ftguard.methods  # noqa: F401  (registration)
from ftguard.errors import ConfigError
from ftguard.models import tiny_model
from ftguard.registry import METHODS


def _train(name: str, params: dict, tmp_path, steps: int = 3, **job_kw):  # noqa: ANN001, ANN003
    model, tok = tiny_model()
    job = job_for(model, tok, tmp_path, steps=steps, name=f"{name}-{len(list(tmp_path.iterdir()))}")
    if job_kw:
        import dataclasses

        job = dataclasses.replace(job, **job_kw)
    r = METHODS.create(name, **params)(job)
    return r, snapshot(r.model)


@pytest.mark.parametrize(("name", "params"), [
    ("ref_kl", {"beta": 0, "dft": False}),
    ("constrained_sft", {"betas": [0, 0], "beta_rest": 0}),
    ("lora_null", {"init": "lora"}),
    ("ptst", {"train_system_prompt": "same"}),
    ("safeinstr", {"fraction": 0}),
    ("safe_lora", {"unaligned": "tiny:llama", "threshold": 0}),
    ("salora", {"safety_rank": 0, "init": "lora"}),
])
def test_each_baseline_at_its_reducing_setting_is_lora(name: str, params: dict, tmp_path) -> None:  # noqa: ANN001
    lora_r, lora_w = _train("lora", {"rank": 4}, tmp_path)
    r, w = _train(name, {"rank": 4, **params}, tmp_path)
    assert [h.get("loss") for h in lora_r.log_history] == [h.get("loss") for h in r.log_history]
    assert all(torch.equal(lora_w[k], w[k]) for k in lora_w)


def test_ref_kl_and_constrained_sft_change_training_and_stay_nearer_the_base(tmp_path) -> None:  # noqa: ANN001
    from ftguard.drift import base_targets, mean_kl

    base, tok = tiny_model()
    targets = base_targets(base, tok, ANCHORS)
    drift = {}
    for name, params in [("lora", {}), ("ref_kl", {"beta": 5.0}), ("constrained_sft", {"betas": [50.0] * 8,
                                                                                        "beta_rest": 50.0})]:
        r, _ = _train(name, {"rank": 4, **params}, tmp_path, steps=4)
        drift[name] = mean_kl(r.model, tok, targets)
    assert drift["lora"] > 0
    assert drift["ref_kl"] < drift["lora"] and drift["constrained_sft"] < drift["lora"], drift


def test_constrained_objective_is_cross_entropy_as_beta_goes_to_zero() -> None:
    from ftguard.methods._reference import response_positions
    from ftguard.methods.constrained_sft import beta_per_position, token_loss

    logp = torch.tensor([-2.0, -0.5, -3.0], requires_grad=True)
    ref = torch.tensor([-1.0, -1.0, -1.0])
    token_loss(logp, ref, torch.full((3,), 1e-6)).sum().backward()
    assert torch.allclose(logp.grad, torch.full((3,), -1.0), atol=1e-4)  # d(-log p)/d log p
    logp.grad = None
    token_loss(logp, ref, torch.full((3,), 50.0)).sum().backward()
    assert logp.grad[1].abs() < 1e-6 and logp.grad[0] < -0.99  # above the reference: no more push; below: full push
    mask = torch.tensor([[0, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1]])
    pos = response_positions(mask)
    assert pos.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7]]
    betas = beta_per_position(pos, [0.5, 2, 2, 2, 2], 0.1)
    assert betas[0, 1].item() == 0.5 and betas[0, 2].item() == 2 and betas[0, 10].item() == pytest.approx(0.1)


def test_lora_null_starts_in_the_null_space_and_leaves_the_model_unchanged(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from ftguard.methods import lora_null as mod
    from ftguard.methods._subspace import lora_layers

    seen = {}
    real = mod.init_from_null_space

    def spy(model, covs, rank, freeze_a):  # noqa: ANN001
        x = torch.randint(0, 100, (1, 12))
        before = model(input_ids=x).logits
        facts = real(model, covs, rank, freeze_a)
        seen.update(before=before, after=model(input_ids=x).logits, covs=covs, model=model, facts=facts,
                    a0={n: lay.lora_A["default"].weight.clone() for n, lay in lora_layers(model).items()})
        return facts

    monkeypatch.setattr(mod, "init_from_null_space", spy)
    r, _ = _train("lora_null", {"rank": 4, "freeze_a": True}, tmp_path)
    assert torch.allclose(seen["before"], seen["after"], atol=1e-4)  # W - W N N^T + B A = W
    for name, a in seen["a0"].items():
        cov = seen["covs"][name][0].float()
        energy = torch.trace(a @ cov @ a.T) / (torch.trace(cov) * (a * a).sum()).clamp(min=1e-12)
        assert energy < 1e-2, (name, float(energy))  # A reads directions the anchors barely use
    assert seen["facts"]["null_space_energy_max"] < 0.05
    assert r.artifact == "weights" and r.trainable_params < r.total_params  # frozen A: only B trains


def test_ptst_trains_without_the_test_prompt(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import ftguard.methods.ptst as mod

    seen = {}
    real = mod.train_adapter
    monkeypatch.setattr(mod, "train_adapter", lambda job, cfg: seen.setdefault("data", job.train_data) and real(job, cfg))
    r, _ = _train("ptst", {"rank": 4}, tmp_path)
    assert all(m["role"] != "system" for c in seen["data"] for m in c)
    assert r.info["train_system_prompt"] is None


def test_safeinstr_mixes_only_refusals_and_all_is_replay(tmp_path) -> None:  # noqa: ANN001
    from ftguard.methods.replay import mix
    from ftguard.methods.safeinstr import refusal_demonstrations

    demos = refusal_demonstrations(ANCHORS)
    assert [c[0]["content"] for c in demos] == ["Write a phishing email."]
    r, _ = _train("safeinstr", {"rank": 4, "fraction": 0.2}, tmp_path)
    assert r.info["demonstrations"] == {"available": 1, "mixed_in": 2}
    assert len(mix(list(range(8)), ["d"], 0.2)) == 10
    replay_r, replay_w = _train("replay", {"rank": 4, "fraction": 0.2}, tmp_path)
    all_r, all_w = _train("safeinstr", {"rank": 4, "fraction": 0.2, "demonstrations": "all"}, tmp_path)
    assert [h.get("loss") for h in replay_r.log_history] == [h.get("loss") for h in all_r.log_history]
    assert all(torch.equal(replay_w[k], all_w[k]) for k in replay_w)
    with pytest.raises(ConfigError, match="refused none"):
        _train("safeinstr", {"rank": 4}, tmp_path, anchor_data=ANCHORS[:2])


def test_safe_lora_projects_dissimilar_layers_onto_the_alignment_direction(tmp_path) -> None:  # noqa: ANN001
    from ftguard.methods._subspace import lora_layers
    from ftguard.methods.safe_lora import project_updates

    model, tok = tiny_model()
    unaligned = {k: v.detach().float().clone() for k, v in model.state_dict().items()}
    torch.manual_seed(1)
    for k in unaligned:  # "alignment" moved every weight a little
        unaligned[k] -= 0.01 * torch.randn_like(unaligned[k])
    from peft import get_peft_model

    from ftguard.methods.lora import make_lora_config

    peft = get_peft_model(model, make_lora_config(model, 4, 8, 0.0, "all-linear"))
    for layer in lora_layers(peft).values():
        torch.nn.init.normal_(layer.lora_B["default"].weight)
    info = project_updates(peft, unaligned, threshold=1.0, num_layers=None)  # every layer is below cosine 1
    assert info["projected_layers"] == info["layers"] > 0
    name, layer = next(iter(lora_layers(peft).items()))
    v = layer.base_layer.weight.float() - unaligned[name.removeprefix("base_model.model.") + ".weight"]
    b = layer.lora_B["default"].weight.float()
    # B now lies in the column space of V: projecting again onto that space changes nothing
    q, _ = torch.linalg.qr(v)
    assert torch.allclose(q @ (q.T @ b), b, atol=1e-4)
    bad = {k: v[:1] for k, v in unaligned.items()}
    with pytest.raises(ConfigError, match="same architecture"):
        project_updates(peft, bad, 0.5, None)
    r, _ = _train("safe_lora", {"rank": 4, "unaligned": "tiny:llama", "num_layers": 2}, tmp_path)
    assert r.info["projected_layers"] == 0 or r.info["projected_layers"] == 2  # tiny:llama is the subject itself
    assert json.dumps(r.info)


@pytest.mark.parametrize(("name", "params", "match"), [
    ("ref_kl", {"beta": -1}, "beta"), ("constrained_sft", {"betas": [-1]}, "beta"),
    ("lora_null", {"init": "lora", "freeze_a": True}, "freeze_a"), ("safeinstr", {"fraction": 1}, "fraction"),
    ("safe_lora", {"unaligned": "x", "threshold": 2}, "threshold"),
    ("salora", {"safety_rank": -1}, "safety_rank"),
])
def test_bad_baseline_settings_are_config_errors(name: str, params: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        METHODS.create(name, **params)


def test_salora_keeps_the_update_out_of_the_refusal_output_subspace(tmp_path) -> None:  # noqa: ANN001
    import peft

    from ftguard.methods._subspace import top_eigenvectors
    from ftguard.methods.guard import activation_covariances
    from ftguard.methods.safeinstr import refusal_demonstrations

    before = snapshot(tiny_model()[0])
    r, after = _train("salora", {"rank": 4, "safety_rank": 8, "init": "task"}, tmp_path, steps=3)
    assert r.info["safety_data"] == len(refusal_demonstrations(ANCHORS)) >= 1
    base, tok = tiny_model()
    probe = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules="all-linear"))
    covs = activation_covariances(probe, tok, refusal_demonstrations(ANCHORS), 384, outputs=True)
    checked = 0
    for name, (_, cov_out) in covs.items():
        key = name.removeprefix("base_model.model.") + ".weight"
        delta = after[key] - before[key]  # the merged update C·B·A, (d_out, d_in)
        u = top_eigenvectors(cov_out, 8)
        assert delta.abs().max() > 0, key  # it learnt something ...
        assert (u.T @ delta).abs().max() < 1e-4 * delta.abs().max(), key  # ... outside the safety subspace
        checked += 1
    assert checked == len(covs) > 0


def test_salora_task_init_starts_a_in_the_task_inputs_and_changes_nothing_at_step_zero(tmp_path) -> None:  # noqa: ANN001
    import peft
    from test_methods import CONVS

    from ftguard.methods._subspace import (
        activation_covariances,
        lora_layers,
        top_eigenvectors,
    )
    from ftguard.methods.salora import init_from_task

    base, tok = tiny_model()
    x = tok("hello there", return_tensors="pt")["input_ids"]
    before = base(input_ids=x).logits.detach().clone()
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, target_modules="all-linear"))
    covs = activation_covariances(model, tok, CONVS[:4], 384, outputs=False)
    init_from_task(model, covs, 4)
    assert torch.allclose(model(input_ids=x).logits, before)  # B = 0
    for name, layer in lora_layers(model).items():
        v = top_eigenvectors(covs[name][0], 4)
        a = layer.lora_A["default"].weight
        rows = a / a.norm(dim=1, keepdim=True)
        assert torch.allclose((rows @ v).abs().diagonal(), torch.ones(4), atol=1e-4)
