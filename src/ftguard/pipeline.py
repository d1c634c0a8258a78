"""The study: evaluate the base model, fine-tune it with every method, evaluate each result on the same
probes with the same prompts and decoding, then write results, summary and report.

    ftguard run configs/quick.yaml          # what the CLI calls: run_study(load_config(...))
"""

from __future__ import annotations

import inspect
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from ftguard import calibration
from ftguard.anchoring import DriftMeter, anchor_conversations
from ftguard.cache import digest
from ftguard.config import Component, MethodSpec, ModelConfig, ProbeSpec, RunConfig
from ftguard.data import load_train_conversations
from ftguard.errors import ConfigError, FtguardError
from ftguard.evaluation import LazyModel, ProbeRun, evaluate_model
from ftguard.judges.base import Judge, fits
from ftguard.manifest import git_sha, host_info, package_versions, timed
from ftguard.methods.base import Method
from ftguard.probes.base import Probe
from ftguard.registry import JUDGES, METHODS, PROBES, load_plugins
from ftguard.results import MANIFEST_FILE, RESULTS_FILE, write_json, write_jsonl
from ftguard.rundir import claim_run_dir, finish_run, read_json_or_none, write_progress

log = logging.getLogger(__name__)
console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)  # logs keep full names
DONE_FILE = "done.json"


def build_probe(cfg: RunConfig, spec: ProbeSpec) -> Probe:
    params = spec.params
    accepts = inspect.signature(PROBES.get(spec.name)).parameters
    if cfg.data.system_prompt and "system_prompt" in accepts:
        params.setdefault("system_prompt", cfg.data.system_prompt)  # the probe prompts as training did
    if "conversations" in accepts and params.get("path") is None and cfg.data.holdout_fraction:
        from ftguard.data.chat import load_holdout_conversations

        params["conversations"] = load_holdout_conversations(cfg)  # chat_holdout: the held-out training part
    return PROBES.create(spec.name, **params)


def build_judges(cfg: RunConfig, spec: ProbeSpec, probe: Probe) -> list[tuple[Component, Judge]]:
    """The probe's judges (first = primary), each bound to the probe; ConfigError when a pair does not fit."""
    if probe.scoring != "generate":  # scored by log-likelihood: no reply, no judge (top-level judges skip it)
        if spec.judges:
            raise ConfigError(f"probe '{probe.name}' is scored by log-likelihood ({probe.scoring}); it takes no judges")
        return []
    judge_specs = list(spec.judges or [Component(name=probe.default_judge)]) + list(cfg.judges)
    judges = []
    for j in judge_specs:
        judge = JUDGES.create(j.name, **j.params)
        why = fits(probe, judge)
        if why:
            raise ConfigError("; ".join(why))
        judges.append((j, judge.for_probe(probe)))
    return judges


def build_probe_runs(cfg: RunConfig) -> list[ProbeRun]:
    load_plugins()
    runs = []
    for spec in cfg.probes:
        probe = build_probe(cfg, spec)
        mnt = cfg.generation.max_new_tokens or probe.max_new_tokens
        runs.append(ProbeRun(probe, build_judges(cfg, spec, probe), mnt,
                             loglik=cfg.knowledge_loglik and probe.reference_loglik))
    return runs


def build_methods(cfg: RunConfig) -> dict[str, Method]:
    """Every method of the study, built once: label -> Method."""
    load_plugins()
    return {spec.label: METHODS.create(spec.name, **spec.params) for spec in cfg.methods}


def method_key(cfg: RunConfig, spec: MethodSpec, method: Method, base_fp: str, data_fp: str) -> str:
    """Content key of a trained model: base weights, data, method and its version, training settings, seed,
    and the anchors for methods that use them. Settings that cannot change the trained model (submit flags,
    price tables, polling) stay out of the key."""
    params = {k: v for k, v in spec.params.items() if k not in method.key_ignores}
    return digest("method", base_fp, data_fp, spec.name, params, spec.lr or cfg.train.lr,
                  cfg.train.model_dump(), cfg.data.max_seq_len, cfg.seed,
                  cfg.anchors.model_dump() if method.needs_anchors else None, method.version)


def _config_text(cfg: RunConfig) -> str:
    return yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False)


def train_method(cfg: RunConfig, spec: MethodSpec, method: Method, key: str, convs: list,
                 timings: dict[str, float], anchors: Any, allow_paid: bool = False, cache_root: Path | None = None,
                 base_fp: str | None = None) -> dict[str, Any]:
    """Train one method from freshly loaded base weights; returns its manifest entry and the tuned model."""
    from ftguard.methods.base import TrainJob
    from ftguard.models import load_model

    folder = cfg.output_dir / "models" / spec.label
    folder.mkdir(parents=True, exist_ok=True)
    anchor_data = anchors() if method.needs_anchors else []
    model, tok = load_model(cfg.model)
    job = TrainJob(model=model, tokenizer=tok, train_data=convs, train=cfg.train, lr=spec.lr or cfg.train.lr,
                   seed=cfg.seed, max_seq_len=cfg.data.max_seq_len, output_dir=folder,
                   base_name=cfg.model.name_or_path, anchor_data=anchor_data, allow_paid=allow_paid,
                   system_prompt=cfg.data.system_prompt, cache_dir=cache_root, base_fingerprint=base_fp)
    console.log(f"[bold]training[/] {spec.label} ({spec.name}, lr={job.lr}, {cfg.train.steps} steps)")
    t0 = time.perf_counter()
    with timed(timings, f"train/{spec.label}"):
        result = method(job)
    # the shared loop's first log entry: training data kept/dropped and the autocast used
    first = next((h for h in result.log_history if "training_data" in h), {})
    info = {"name": spec.name, "params": spec.params, "lr": job.lr, "key": key, "artifact": result.artifact,
            "train_seconds": round(time.perf_counter() - t0, 2), "seconds_per_step": result.seconds_per_step,
            "trainable_params": result.trainable_params, "total_params": result.total_params,
            "training_data": first.get("training_data"), "mixed_precision": first.get("mixed_precision"),
            "log_history": result.log_history, **({"method_info": result.info} if result.info else {})}
    write_json(folder / DONE_FILE, info)  # atomic: a kill never leaves a torn done.json
    return {"info": info, "model": (result.model, tok)}


def _previous_runs(out: Path) -> list[dict[str, Any]]:
    """Timings of earlier invocations in this run dir, so a cached re-run does not hide the real costs."""
    old = read_json_or_none(out / MANIFEST_FILE)
    if old is None:
        return []
    return [*old.get("history", []), {k: old.get(k) for k in ("started", "finished", "timings", "git_sha")}]


def key_envs(cfg: RunConfig) -> set[str]:
    """Every environment variable the config names as holding a key: the only ones a saved model folder may
    ask for (a crafted ftguard_model.json must not pick which secret is sent where)."""
    names = {cfg.model.api_key_env}
    for spec in [*cfg.methods, *cfg.judges, *(j for p in cfg.probes for j in p.judges or [])]:
        if isinstance(spec.params.get("api_key_env"), str):
            names.add(spec.params["api_key_env"])
    return names


def run_study(cfg: RunConfig, allow_paid: bool = False) -> dict[str, Any]:
    """Run (or resume) the whole study; returns the report summary. `allow_paid` (`--yes`) lets hosted
    methods submit paid jobs. The run folder is locked for the whole run (rundir.py). With `align:`, the
    subject is aligned first (align.py, cached) and the study starts from the aligned model."""
    with claim_run_dir(cfg.output_dir):
        alignment = None
        if cfg.align is not None:
            from ftguard.align import aligned_model_config

            aligned, record = aligned_model_config(cfg.model, cfg.align)
            alignment = {**record, "unaligned_model": cfg.model.name_or_path, "aligned_model": aligned.name_or_path}
            cfg = cfg.model_copy(update={"model": aligned})
        return _run_study(cfg, allow_paid, alignment)


def _run_study(cfg: RunConfig, allow_paid: bool, alignment: dict[str, Any] | None = None) -> dict[str, Any]:
    from ftguard.models import load_model, model_fingerprint
    from ftguard.report import build_report, print_summary

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    manifest: dict[str, Any] = {"config": json.loads(cfg.model_dump_json()), "versions": package_versions(),
                                "git_sha": git_sha(), "host": host_info(), "seed": cfg.seed,
                                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "timings": timings, "methods": {},
                                "history": _previous_runs(cfg.output_dir), "alignment": alignment}
    write_progress(cfg.output_dir, manifest)
    with timed(timings, "setup"):
        probe_runs = build_probe_runs(cfg)
        methods = build_methods(cfg)
        base_fp = model_fingerprint(cfg.model)
        convs = load_train_conversations(cfg)
        data_fp = digest("data", convs)
    if cfg.data.holdout_fraction:
        from ftguard.data.chat import load_holdout_conversations

        held = load_holdout_conversations(cfg)
        write_json(cfg.output_dir / "holdout.json", {
            "train_file": cfg.data.train, "fraction": cfg.data.holdout_fraction, "rule": "sha256 of the conversation "
            "content (data/chat.py holdout_split), independent of seed and order", "held_out": len(held),
            "trained_on": len(convs), "held_out_digests": [digest("conv", c) for c in held]})
    manifest.update(base_fingerprint=base_fp, train_fingerprint=data_fp, train_conversations=len(convs),
                    probes={p.probe.name: {"category": p.probe.category, "version": p.probe.version,
                                           "n": len(p.probe.items), "judges": [j.name for j, _ in p.judges],
                                           "max_new_tokens": p.max_new_tokens} for p in probe_runs},
                    judge_calibration=calibration.records_for(
                        (p.probe.name, j.name) for p in probe_runs for _, j in p.judges))
    cache_root = cfg.cache_dir or cfg.output_dir / "cache"
    served = cfg.model.endpoint is not None  # an API gives no token log-probabilities: no drift numbers
    if served:  # a served base has no local weights to train: only hosted methods can tune it
        local = [label for label, m in methods.items() if m.trains_locally]
        if local:
            raise ConfigError(f"methods {local} train local weights, but model.endpoint serves the base model; "
                              "use hosted methods (openai_ft, together_ft, served) or a local model.name_or_path")
    base = LazyModel(lambda: load_model(cfg.model))
    rows = []
    with timed(timings, "eval/base"):
        rows += evaluate_model("base", base_fp, base, probe_runs, cfg.generation, cache_root)
    drift = DriftMeter(cfg, base_fp, base, cache_root)
    manifest["drift"] = {"base": 0.0 if cfg.anchors.drift_n and not served else None}
    anchor_cache: list[Any] = []

    def anchors() -> list[Any]:  # built once, on the first method that asks for them
        if not anchor_cache:
            with timed(timings, "anchors"):
                anchor_cache.append(anchor_conversations(cfg, "train", cfg.anchors.n, base_fp, base, cache_root))
        return anchor_cache[0]

    for spec in cfg.methods:
        method = methods[spec.label]
        key = method_key(cfg, spec, method, base_fp, data_fp)
        folder = cfg.output_dir / "models" / spec.label
        done = read_json_or_none(folder / DONE_FILE)  # missing or torn: train again
        if done and done.get("key") == key:
            console.log(f"{spec.label}: trained earlier (key {key}), reusing {folder}")
            info = done
            saved = cfg.model.model_copy(update={"name_or_path": str(folder), "allowed_key_envs": sorted(key_envs(cfg))})
            lazy = LazyModel(lambda m=saved: load_model(m))
        else:
            trained = train_method(cfg, spec, method, key, convs, timings, anchors, allow_paid, cache_root, base_fp)
            info = trained["info"]
            lazy = LazyModel(lambda m=trained["model"]: m)
        manifest["methods"][spec.label] = {k: v for k, v in info.items() if k != "log_history"}
        write_progress(cfg.output_dir, manifest)
        eval_fp, endpoint = key, info.get("artifact") == "endpoint"
        if endpoint:  # a served model is identified by (endpoint, name), as in `ftguard eval`
            eval_fp = model_fingerprint(cfg.model.model_copy(update={"name_or_path": str(folder),
                                                                      "allowed_key_envs": sorted(key_envs(cfg))}))
        with timed(timings, f"eval/{spec.label}"):
            rows += evaluate_model(spec.label, eval_fp, lazy, probe_runs, cfg.generation, cache_root)
        with timed(timings, f"drift/{spec.label}"):
            manifest["drift"][spec.label] = None if served or endpoint else drift.measure(key, lazy)
        del lazy
    if cfg.wise_ft is not None:
        rows += wise_ft_sweep(cfg, manifest, probe_runs, drift, cache_root, timings)
    timings["total"] = round(time.perf_counter() - t_start, 2)
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_jsonl(cfg.output_dir / RESULTS_FILE, rows)
    finish_run(cfg.output_dir, _config_text(cfg), manifest)  # only a finished run replaces config and manifest
    summary = build_report(cfg.output_dir)
    print_summary(summary, console)
    if summary.get("gate"):
        from ftguard.gate import format_verdict

        console.print(format_verdict(summary["gate"]), markup=False, highlight=False)
    console.log(f"report: {cfg.output_dir / 'report.html'} ({timings['total']:.0f} s)")
    return summary


def wise_ft_sweep(cfg: RunConfig, manifest: dict[str, Any], probe_runs: list[ProbeRun], drift: DriftMeter,
                  cache_root: Path, timings: dict[str, float]) -> list[Any]:
    """Evaluate the swept adapter at every alpha as models "<label>@<alpha>"; record them as a curve."""
    from ftguard.methods.wise_ft import load_rescaled

    sweep = cfg.wise_ft
    assert sweep is not None
    of = manifest["methods"][sweep.method]
    folder = cfg.output_dir / "models" / sweep.method
    rows, labels = [], []
    for alpha in sweep.alphas:
        label, key = f"{sweep.method}@{alpha:g}", digest("wise_ft", of["key"], alpha)
        lazy = LazyModel(lambda a=alpha: load_rescaled(folder, cfg.model, a))
        with timed(timings, f"eval/{label}"):
            rows += evaluate_model(label, key, lazy, probe_runs, cfg.generation, cache_root)
            manifest["drift"][label] = drift.measure(key, lazy)
        manifest["methods"][label] = {"name": "wise_ft", "params": {"of": sweep.method, "alpha": alpha},
                                      "lr": of["lr"], "key": key, "train_seconds": 0.0, "seconds_per_step": None,
                                      "trainable_params": 0, "total_params": of["total_params"]}
        labels.append(label)
    manifest.setdefault("curves", {})[f"WiSE-FT ({sweep.method})"] = [*labels, sweep.method]
    return rows


def eval_model(cfg: RunConfig, model: str, tag: str = "base") -> dict[str, Any]:
    """Evaluate one model (hub id, local path, embedded name, or a run's models/<label> folder) on the probes."""
    mcfg = cfg.model.model_copy(update={"name_or_path": model})
    cfg = cfg.model_copy(update={"model": mcfg, "methods": []})
    with claim_run_dir(cfg.output_dir):
        return _eval_model(cfg, mcfg, model, tag)


def _eval_model(cfg: RunConfig, mcfg: ModelConfig, model: str, tag: str) -> dict[str, Any]:
    from ftguard.models import load_model, model_fingerprint
    from ftguard.report import build_report, print_summary

    timings: dict[str, float] = {}
    manifest = {"config": json.loads(cfg.model_dump_json()), "versions": package_versions(), "git_sha": git_sha(),
                "host": host_info(), "seed": cfg.seed, "timings": timings, "methods": {}, "evaluated_model": model}
    probe_runs = build_probe_runs(cfg)
    manifest["judge_calibration"] = calibration.records_for(
        (p.probe.name, j.name) for p in probe_runs for _, j in p.judges)
    write_progress(cfg.output_dir, manifest)
    fp = model_fingerprint(mcfg)
    with timed(timings, f"eval/{tag}"):
        rows = evaluate_model(tag, fp, LazyModel(lambda: load_model(mcfg)), probe_runs, cfg.generation,
                              cfg.cache_dir or cfg.output_dir / "cache")
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_jsonl(cfg.output_dir / RESULTS_FILE, rows)
    finish_run(cfg.output_dir, _config_text(cfg), manifest)
    summary = build_report(cfg.output_dir)
    print_summary(summary, console)
    return summary


def validate(path: str, overrides: list[str]) -> list[str]:
    """Every error in a config at once: schema, component names and parameters, each probe/judge pair,
    model, training data; nothing is loaded but what these checks need (no model weights)."""
    from ftguard.config import load_config

    try:
        cfg = load_config(path, overrides)
    except FtguardError as e:
        return [str(e)]
    return validate_config(cfg)


def validate_config(cfg: RunConfig) -> list[str]:
    """The checks of `validate` on a loaded config (`ftguard run` makes them before it starts)."""
    from ftguard.models import model_fingerprint
    from ftguard.rundir import check_output_dir

    load_plugins()
    errors: list[str] = []
    checks: list[tuple[str, Any]] = [(f"methods[{i}] ({s.name})", lambda s=s: METHODS.create(s.name, **s.params))
                                     for i, s in enumerate(cfg.methods)]
    for i, s in enumerate(cfg.probes):
        checks.append((f"probes[{i}] ({s.name})", lambda s=s: _check_probe(cfg, s)))
    checks += [(f"judges[{i}] ({j.name})", lambda j=j: JUDGES.create(j.name, **j.params))
               for i, j in enumerate(cfg.judges)]
    checks.append(("model", lambda: _check_model(cfg.model, model_fingerprint)))
    checks.append(("data.train", lambda: load_train_conversations(cfg)))
    checks.append(("output_dir", lambda: check_output_dir(cfg.output_dir)))
    if cfg.wise_ft is not None:
        checks.append(("wise_ft", lambda: _check_wise_ft(cfg)))
    if cfg.gate is not None:
        checks.append(("gate", lambda: _check_gate(cfg)))
    for where, check in checks:
        try:
            check()
        except (FtguardError, KeyError, ValueError) as e:
            errors.append(f"{where}: {e}")
    return errors


def _check_probe(cfg: RunConfig, spec: ProbeSpec) -> None:
    probe = build_probe(cfg, spec)
    build_judges(cfg, spec, probe)
    if probe.scoring == "choices" and cfg.model.endpoint:
        raise ConfigError(f"probe '{probe.name}' scores choices by log-likelihood, and a model served behind an "
                          f"API (model.endpoint) gives no log-probabilities: it cannot run on {cfg.model.name_or_path}")


def _check_gate(cfg: RunConfig) -> None:
    from ftguard.categories import CATEGORIES

    known = {*CATEGORIES, *(s.name for s in cfg.probes)}
    unknown = [k for k in [*cfg.gate.max_drop, *cfg.gate.min_gain] if k not in known]
    if unknown:
        raise ConfigError(f"keys {unknown} are neither a category nor a probe of this config ({', '.join(sorted(known))})")
    if not cfg.methods:
        raise ConfigError("a gate compares tuned models with the base: this config has no methods")


def _check_wise_ft(cfg: RunConfig) -> None:
    spec = next(s for s in cfg.methods if s.label == cfg.wise_ft.method)  # the config checked that it exists
    if not METHODS.create(spec.name, **spec.params).saves_adapter:
        raise ConfigError(f"wise_ft.method {spec.label!r} is {spec.name}, which saves no LoRA adapter to rescale")


def _check_model(mcfg: ModelConfig, fingerprint: Any) -> None:
    from ftguard.errors import ModelError

    name = mcfg.name_or_path
    if (name.startswith((".", "/", "~")) or name.lower().endswith(".gguf")) and not Path(name).expanduser().exists():
        raise ModelError(f"Model {'file' if name.lower().endswith('.gguf') else 'folder'} '{name}' does not exist")
    fingerprint(mcfg)  # raises for a missing embedded package


__all__ = ["ConfigError", "eval_model", "run_study", "validate"]
