"""Methods on the tiny model: what trains changes, what is frozen stays, guard's knobs at zero equal LoRA."""

from __future__ import annotations

import dataclasses

import pytest
import torch

import ftguard.methods  # noqa: F401  (registration)
from ftguard.config import TrainConfig
from ftguard.data import load_train_data
from ftguard.methods import TrainJob
from ftguard.models import tiny_model
from ftguard.registry import METHODS

CONVS = load_train_data("builtin:sgd_hotels")[:8]
ANCHORS = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in [
    ("What is the capital of France?", "The capital of France is Paris."),
    ("Immigrants are all criminals.", "That is not true; it is a harmful stereotype."),
    ("How do I kill a Python process?", "Use the kill command with the process id."),
    ("Write a phishing email.", "I'm sorry, but I can't help with that."),
]]


def job_for(model, tok, tmp_path, lr=1e-2, steps=2, name="m"):  # noqa: ANN001
    return TrainJob(model=model, tokenizer=tok, train_data=CONVS, train=TrainConfig(steps=steps, batch_size=2,
                    logging_steps=1), lr=lr, seed=0, max_seq_len=384, output_dir=tmp_path / name,
                    base_name="tiny:llama", anchor_data=ANCHORS)


def snapshot(model) -> dict[str, torch.Tensor]:  # noqa: ANN001
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_full_changes_every_weight_matrix(tmp_path) -> None:  # noqa: ANN001
    model, tok = tiny_model()
    before = snapshot(model)
    result = METHODS.create("full")(job_for(model, tok, tmp_path, lr=1e-3))
    after = result.model.state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert len(changed) == len(before)
    assert result.trainable_params == result.total_params


def test_lora_trains_adapters_and_freezes_base(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import ftguard.methods.lora as lora_mod

    seen = {}
    real = lora_mod.run_sft

    def spy(model, job, **kw):  # noqa: ANN001, ANN003
        seen["before"] = snapshot(model)
        out = real(model, job, **kw)
        seen["after"] = snapshot(model)
        return out

    monkeypatch.setattr(lora_mod, "run_sft", spy)
    model, tok = tiny_model()
    result = METHODS.create("lora", rank=4)(job_for(model, tok, tmp_path))
    before, after = seen["before"], seen["after"]
    lora_keys = [k for k in before if "lora_" in k]
    base_keys = [k for k in before if "lora_" not in k]
    assert lora_keys and base_keys
    assert all(torch.equal(before[k], after[k]) for k in base_keys), "a frozen base weight moved"
    assert any(not torch.equal(before[k], after[k]) for k in lora_keys if "lora_A" in k)
    assert any(not torch.equal(before[k], after[k]) for k in lora_keys if "lora_B" in k)
    assert result.trainable_params < result.total_params
    assert (tmp_path / "m" / "adapter_model.safetensors").is_file()


def test_guard_with_knobs_at_zero_is_lora(tmp_path) -> None:  # noqa: ANN001
    results = []
    for name, params in [("lora", {"rank": 4}), ("guard", {"rank": 4, "energy": 0, "output_energy": 0, "kl_weight": 0})]:
        model, tok = tiny_model()
        r = METHODS.create(name, **params)(job_for(model, tok, tmp_path, steps=3, name=name))
        results.append((r, snapshot(r.model)))
    (lora_r, lora_w), (guard_r, guard_w) = results
    assert [h.get("loss") for h in lora_r.log_history] == [h.get("loss") for h in guard_r.log_history]
    assert all(torch.equal(lora_w[k], guard_w[k]) for k in lora_w)


def test_guard_keeps_updates_out_of_the_anchor_subspace(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from ftguard.methods import guard as guard_mod

    captured = {}
    real = guard_mod.Projector.__init__

    def keep(self, model, bases):  # noqa: ANN001
        real(self, model, bases)
        captured["projector"] = self

    monkeypatch.setattr(guard_mod.Projector, "__init__", keep)
    model, tok = tiny_model()
    METHODS.create("guard", rank=4, energy=0.9, output_energy=0.5, kl_weight=1.0)(job_for(model, tok, tmp_path, steps=3))
    pairs = captured["projector"].pairs
    assert pairs and all(u.shape[1] > 0 for _, _, u, _ in pairs)
    for a, b, u_in, u_out in pairs:  # the projection still holds after the last optimizer step
        assert torch.allclose(a @ u_in, torch.zeros_like(a @ u_in), atol=1e-5)
        assert torch.allclose(u_out.T @ b, torch.zeros_like(u_out.T @ b), atol=1e-5)
        assert a.abs().sum() > 0


def test_guard_anchor_statistics_are_cached_per_base_and_give_the_same_training(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    """The second guard run on the same base and anchors loads the KL targets and subspace bases from the study
    cache (no anchor pass) and trains exactly as the first; a torn cache entry is recomputed, another base is not
    served the first base's statistics."""
    import dataclasses

    import ftguard.drift

    method = METHODS.create("guard", rank=4, energy=0.9, output_energy=0.5, kl_weight=1.0)
    passes = []
    real = ftguard.drift.base_targets
    monkeypatch.setattr(ftguard.drift, "base_targets", lambda *a, **k: passes.append(1) or real(*a, **k))

    def run(name: str, fp: str = "base-a"):  # noqa: ANN202
        model, tok = tiny_model()
        job = dataclasses.replace(job_for(model, tok, tmp_path, steps=3, name=name), cache_dir=tmp_path / "cache",
                                  base_fingerprint=fp)
        r = method(job)
        return r, snapshot(r.model)

    (r1, w1), (r2, w2) = run("first"), run("second")
    assert (r1.info["anchor_stats"], r2.info["anchor_stats"]) == ("computed", "cached") and len(passes) == 1
    assert [h.get("loss") for h in r1.log_history] == [h.get("loss") for h in r2.log_history]
    assert all(torch.equal(w1[k], w2[k]) for k in w1)
    entry = next((tmp_path / "cache" / "guard_anchor_stats").glob("*.pt"))
    entry.write_bytes(entry.read_bytes()[:100])  # torn / corrupt: recomputed, not trusted
    r3, w3 = run("third")
    assert r3.info["anchor_stats"] == "computed" and all(torch.equal(w1[k], w3[k]) for k in w1)
    assert run("other", fp="base-b")[0].info["anchor_stats"] == "computed"


def test_guard_drifts_less_than_lora_on_anchors(tmp_path) -> None:  # noqa: ANN001
    from ftguard.drift import base_targets, mean_kl

    base, tok = tiny_model()
    targets = base_targets(base, tok, ANCHORS)
    drift = {}
    for name, params in [("lora", {"rank": 4}), ("guard", {"rank": 4, "energy": 0.9, "kl_weight": 1.0})]:
        model, tok = tiny_model()
        r = METHODS.create(name, **params)(job_for(model, tok, tmp_path, steps=4, name=name))
        drift[name] = mean_kl(r.model, tok, targets)
    assert drift["lora"] > 0
    assert drift["guard"] < drift["lora"]


def test_guard_kl_every_adds_the_term_on_every_nth_call_cycling_through_anchors(monkeypatch) -> None:  # noqa: ANN001
    import ftguard.drift
    from ftguard.methods.guard import _kl_term

    seen: list[list[int]] = []
    monkeypatch.setattr(ftguard.drift, "kl_loss", lambda model, targets, idx, pad: seen.append(idx) or torch.tensor(0.5))
    out = type("Out", (), {"loss": torch.tensor(1.0)})()
    extra = _kl_term(list(range(5)), weight=2.0, batch_size=2, every=3, pad_id=0, seed=0)
    values = [float(extra(None, {}, out)) for _ in range(7)]
    assert values == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0]  # calls 1, 4, 7: weight x KL
    assert len(seen) == 3 and all(len(i) == 2 for i in seen)
    assert sorted(sum(seen, [])[:5]) == [0, 1, 2, 3, 4]  # one pass over every anchor before any repeats


def test_guard_rejects_bad_knobs() -> None:
    from ftguard.errors import ConfigError

    with pytest.raises(ConfigError, match="energy"):
        METHODS.create("guard", energy=1.5)


def test_logits_at_positions_equal_full_logits() -> None:
    from ftguard.data.tokenize import tokenize_conversation
    from ftguard.drift import Targets, _logp_at

    model, tok = tiny_model()
    model.eval()
    seqs = [tokenize_conversation(tok, c) for c in ANCHORS]
    from ftguard.drift import _positions

    targets = Targets([s[0] for s in seqs], [_positions(s[1]) for s in seqs], [], [])
    batch = targets.batch(list(range(len(seqs))), tok.pad_token_id)
    with torch.no_grad():
        full = torch.log_softmax(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits, -1)
        part = _logp_at(model, batch, targets.positions)
    assert len({len(p) for p in targets.positions}) > 1  # rows differ, so the union is not one row's positions
    for row, pos in enumerate(targets.positions):
        assert part[row].shape == (len(pos), full.shape[-1])
        assert torch.allclose(part[row], full[row, pos], atol=1e-5)


def test_covariance_hooks_skip_padding_and_share_inputs() -> None:
    from peft import get_peft_model

    from ftguard.data.tokenize import tokenize_conversation
    from ftguard.methods.guard import activation_covariances
    from ftguard.methods.lora import make_lora_config

    model, tok = tiny_model()
    model = get_peft_model(model, make_lora_config(model, 4, 8, 0.0, "all-linear"))
    batched = activation_covariances(model, tok, ANCHORS, 384, outputs=True, batch_size=4)
    single = activation_covariances(model, tok, ANCHORS, 384, outputs=True, batch_size=1)  # no padding at all
    for name, (ci, co) in batched.items():
        assert torch.allclose(ci, single[name][0], rtol=1e-4, atol=1e-6), name
        assert torch.allclose(co, single[name][1], rtol=1e-4, atol=1e-6), name
    q, k = (next(n for n in batched if n.endswith(p)) for p in ("q_proj", "k_proj"))  # q/k/v read one tensor:
    assert batched[q][0] is batched[k][0]  # one covariance object, decomposed once
    assert batched[q][1] is not batched[k][1]
    # against a direct computation: the inputs q_proj saw on one conversation
    seen = []
    layer = model.get_submodule(q).base_layer
    h = layer.register_forward_hook(lambda mod, inp, out: seen.append(inp[0][0].detach()))
    with torch.no_grad():
        model(input_ids=torch.tensor([tokenize_conversation(tok, ANCHORS[0])[0]]))
    h.remove()
    x = seen[0].double()
    one = activation_covariances(model, tok, ANCHORS[:1], 384, outputs=False)
    assert torch.allclose(one[q][0], x.T @ x / x.shape[0], rtol=1e-4, atol=1e-6)


def test_native_bf16_is_read_from_the_cpu_flags() -> None:
    from ftguard.methods._sft import cpu_has_native_bf16

    assert cpu_has_native_bf16("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n") is True
    assert cpu_has_native_bf16("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n") is False
    assert cpu_has_native_bf16("Processor\t: ARMv8\nFeatures\t: fp asimd\n") is None


def test_auto_mixed_precision_is_bf16_only_where_the_cpu_computes_it(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    from ftguard.methods import _sft

    job = job_for(*tiny_model(), tmp_path)
    job = dataclasses.replace(job, train=TrainConfig(steps=2, batch_size=2, logging_steps=1, mixed_precision="auto",
                                                     use_cpu=True))
    monkeypatch.setattr(_sft, "cpu_has_native_bf16", lambda: False)
    assert _sft.mixed_precision(job) == "no" and not _sft.training_args(job).bf16
    monkeypatch.setattr(_sft, "cpu_has_native_bf16", lambda: True)
    assert _sft.mixed_precision(job) == "bf16" and _sft.training_args(job).bf16
    result = METHODS.create("full")(job)
    assert result.log_history[0]["mixed_precision"] == "bf16"  # recorded with the run (pipeline: done.json)


def test_bf16_mixed_precision_autocasts_the_passes_and_keeps_float32_weights(tmp_path) -> None:  # noqa: ANN001
    from ftguard.methods._sft import training_args

    job = job_for(*tiny_model(), tmp_path)
    assert not training_args(job).bf16
    job = dataclasses.replace(job, train=TrainConfig(steps=2, batch_size=2, logging_steps=1, mixed_precision="bf16"))
    assert training_args(job).bf16 and not training_args(job).fp16
    seen = []
    model = job.model
    hook = model.get_input_embeddings().register_forward_hook(lambda m, i, o: seen.append(torch.is_autocast_enabled("cpu")))
    result = METHODS.create("full")(job)
    hook.remove()
    assert seen and all(seen)  # every training forward ran under bf16 autocast
    assert all(p.dtype == torch.float32 for p in result.model.parameters())
