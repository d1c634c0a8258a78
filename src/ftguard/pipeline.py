"""The study: evaluate the base model, fine-tune it with every method, evaluate each result on the same
probes with the same prompts and decoding, then write results, summary and report.

    ftguard run configs/quick.yaml          # what the CLI calls: run_study(load_config(...))
"""

from __future__ import annotations

import inspect
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from ftguard.anchoring import DriftMeter, anchor_conversations
from ftguard.cache import digest
from ftguard.config import Component, ModelConfig, RunConfig
from ftguard.errors import ConfigError, FtguardError
from ftguard.evaluation import LazyModel, ProbeRun, evaluate_model
from ftguard.manifest import git_sha, host_info, package_versions, timed
from ftguard.registry import JUDGES, METHODS, PROBES
from ftguard.results import CONFIG_FILE, MANIFEST_FILE, RESULTS_FILE, write_json, write_jsonl

log = logging.getLogger(__name__)
console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)  # logs keep full names
DONE_FILE = "done.json"


def load_plugins() -> None:
    import ftguard.judges  # noqa: F401  (registration)
    import ftguard.methods  # noqa: F401
    import ftguard.probes  # noqa: F401


def build_probe_runs(cfg: RunConfig) -> list[ProbeRun]:
    load_plugins()
    runs = []
    for spec in cfg.probes:
        params = spec.params
        if cfg.data.system_prompt and "system_prompt" in inspect.signature(PROBES.get(spec.name)).parameters:
            params.setdefault("system_prompt", cfg.data.system_prompt)  # the probe prompts as training did
        probe = PROBES.create(spec.name, **params)
        judge_specs = list(spec.judges or [Component(name=probe.default_judge)]) + list(cfg.judges)
        judges = [(j, JUDGES.create(j.name, **j.params)) for j in judge_specs]
        mnt = cfg.generation.max_new_tokens or probe.max_new_tokens
        runs.append(ProbeRun(probe, judges, mnt, loglik=cfg.knowledge_loglik and probe.category == "knowledge"))
    return runs


def load_train_conversations(cfg: RunConfig) -> list[list[dict[str, str]]]:
    from ftguard.data import load_train_data

    convs = load_train_data(cfg.data.train, cfg.data.system_prompt)
    if cfg.data.max_examples is not None:
        convs = list(convs)
        random.Random(cfg.seed).shuffle(convs)
        convs = convs[: cfg.data.max_examples]
    return convs


def method_key(cfg: RunConfig, spec: Any, base_fp: str, data_fp: str) -> str:
    """Content key of a trained model: base weights, data, method, training settings, seed (and anchors)."""
    method = METHODS.create(spec.name, **spec.params)
    uses_anchors = getattr(method, "needs_anchors", False)
    # settings that cannot change the trained model (submit flags, price tables, polling) stay out of the key
    params = {k: v for k, v in spec.params.items() if k not in getattr(method, "key_ignores", ())}
    # a method whose training changed (not just got faster) sets `version`, so older results are not reused
    version = getattr(method, "version", None)
    return digest("method", base_fp, data_fp, spec.name, params, spec.lr or cfg.train.lr,
                  cfg.train.model_dump(), cfg.data.max_seq_len, cfg.seed,
                  cfg.anchors.model_dump() if uses_anchors else None, *([version] if version is not None else []))


def _write_run_files(cfg: RunConfig, manifest: dict[str, Any]) -> None:
    out = cfg.output_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / CONFIG_FILE).write_text(yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False))
    write_json(out / MANIFEST_FILE, manifest)


def train_method(cfg: RunConfig, spec: Any, key: str, convs: list, timings: dict[str, float],
                 anchors: Any) -> dict[str, Any]:
    """Train one method from freshly loaded base weights; returns its manifest entry and the tuned model."""
    from ftguard.methods.base import TrainJob
    from ftguard.models import load_model

    folder = cfg.output_dir / "models" / spec.label
    folder.mkdir(parents=True, exist_ok=True)
    method = METHODS.create(spec.name, **spec.params)
    anchor_data = anchors() if getattr(method, "needs_anchors", False) else []
    model, tok = load_model(cfg.model)
    job = TrainJob(model=model, tokenizer=tok, train_data=convs, train=cfg.train, lr=spec.lr or cfg.train.lr,
                   seed=cfg.seed, max_seq_len=cfg.data.max_seq_len, output_dir=folder,
                   base_name=cfg.model.name_or_path, anchor_data=anchor_data)
    console.log(f"[bold]training[/] {spec.label} ({spec.name}, lr={job.lr}, {cfg.train.steps} steps)")
    t0 = time.perf_counter()
    with timed(timings, f"train/{spec.label}"):
        result = method(job)
    info = {"name": spec.name, "params": spec.params, "lr": job.lr, "key": key, "artifact": result.artifact,
            "train_seconds": round(time.perf_counter() - t0, 2), "seconds_per_step": result.seconds_per_step,
            "trainable_params": result.trainable_params, "total_params": result.total_params,
            "log_history": result.log_history}
    (folder / DONE_FILE).write_text(json.dumps(info, indent=2, default=str))
    return {"info": info, "model": (result.model, tok)}


def _previous_runs(out: Path) -> list[dict[str, Any]]:
    """Timings of earlier invocations in this run dir, so a cached re-run does not hide the real costs."""
    path = out / MANIFEST_FILE
    if not path.exists():
        return []
    old = json.loads(path.read_text())
    return [*old.get("history", []), {k: old.get(k) for k in ("started", "finished", "timings", "git_sha")}]


def run_study(cfg: RunConfig) -> dict[str, Any]:
    """Run (or resume) the whole study; returns the report summary."""
    from ftguard.models import load_model, model_fingerprint
    from ftguard.report import build_report, print_summary

    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    manifest: dict[str, Any] = {"config": json.loads(cfg.model_dump_json()), "versions": package_versions(),
                                "git_sha": git_sha(), "host": host_info(), "seed": cfg.seed,
                                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "timings": timings, "methods": {},
                                "history": _previous_runs(cfg.output_dir)}
    _write_run_files(cfg, manifest)
    with timed(timings, "setup"):
        probe_runs = build_probe_runs(cfg)
        base_fp = model_fingerprint(cfg.model)
        convs = load_train_conversations(cfg)
        data_fp = digest("data", convs)
    manifest.update(base_fingerprint=base_fp, train_fingerprint=data_fp, train_conversations=len(convs),
                    probes={p.probe.name: {"category": p.probe.category, "version": p.probe.version,
                                           "n": len(p.probe.items), "judges": [j.name for j, _ in p.judges],
                                           "max_new_tokens": p.max_new_tokens} for p in probe_runs})
    cache_root = cfg.cache_dir or cfg.output_dir / "cache"
    served = cfg.model.endpoint is not None  # an API gives no token log-probabilities: no drift numbers
    if served:  # a served base has no local weights to train: only hosted methods can tune it
        local = [s.label for s in cfg.methods if getattr(METHODS.create(s.name, **s.params), "trains_locally", True)]
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
        key = method_key(cfg, spec, base_fp, data_fp)
        folder = cfg.output_dir / "models" / spec.label
        done = json.loads((folder / DONE_FILE).read_text()) if (folder / DONE_FILE).exists() else None
        if done and done.get("key") == key:
            console.log(f"{spec.label}: trained earlier (key {key}), reusing {folder}")
            info = done
            lazy = LazyModel(lambda f=folder: load_model(cfg.model.model_copy(update={"name_or_path": str(f)})))
        else:
            trained = train_method(cfg, spec, key, convs, timings, anchors)
            info = trained["info"]
            lazy = LazyModel(lambda m=trained["model"]: m)
        manifest["methods"][spec.label] = {k: v for k, v in info.items() if k != "log_history"}
        write_json(cfg.output_dir / MANIFEST_FILE, manifest)
        eval_fp, endpoint = key, info.get("artifact") == "endpoint"
        if endpoint:  # a served model is identified by (endpoint, name), as in `ftguard eval`
            eval_fp = model_fingerprint(cfg.model.model_copy(update={"name_or_path": str(folder)}))
        with timed(timings, f"eval/{spec.label}"):
            rows += evaluate_model(spec.label, eval_fp, lazy, probe_runs, cfg.generation, cache_root)
        with timed(timings, f"drift/{spec.label}"):
            manifest["drift"][spec.label] = None if served or endpoint else drift.measure(key, lazy)
        del lazy
    if cfg.wise_ft is not None:
        rows += wise_ft_sweep(cfg, manifest, probe_runs, drift, cache_root, timings)
    write_jsonl(cfg.output_dir / RESULTS_FILE, rows)
    timings["total"] = round(time.perf_counter() - t_start, 2)
    manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    write_json(cfg.output_dir / MANIFEST_FILE, manifest)
    summary = build_report(cfg.output_dir)
    print_summary(summary, console)
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
    from ftguard.models import load_model, model_fingerprint
    from ftguard.report import build_report, print_summary

    mcfg = cfg.model.model_copy(update={"name_or_path": model})
    cfg = cfg.model_copy(update={"model": mcfg, "methods": []})
    timings: dict[str, float] = {}
    manifest = {"config": json.loads(cfg.model_dump_json()), "versions": package_versions(), "git_sha": git_sha(),
                "host": host_info(), "seed": cfg.seed, "timings": timings, "methods": {}, "evaluated_model": model}
    _write_run_files(cfg, manifest)
    probe_runs = build_probe_runs(cfg)
    fp = model_fingerprint(mcfg)
    with timed(timings, f"eval/{tag}"):
        rows = evaluate_model(tag, fp, LazyModel(lambda: load_model(mcfg)), probe_runs, cfg.generation,
                              cfg.cache_dir or cfg.output_dir / "cache")
    write_jsonl(cfg.output_dir / RESULTS_FILE, rows)
    write_json(cfg.output_dir / MANIFEST_FILE, manifest)
    summary = build_report(cfg.output_dir)
    print_summary(summary, console)
    return summary


def validate(path: str, overrides: list[str]) -> list[str]:
    """Every error in a config at once: schema, component names and parameters, model, training data."""
    from ftguard.config import load_config
    from ftguard.models import model_fingerprint

    try:
        cfg = load_config(path, overrides)
    except FtguardError as e:
        return [str(e)]
    load_plugins()
    errors: list[str] = []
    checks: list[tuple[str, Any]] = [(f"methods[{i}]", lambda s=s: METHODS.create(s.name, **s.params))
                                     for i, s in enumerate(cfg.methods)]
    for i, s in enumerate(cfg.probes):
        checks.append((f"probes[{i}]", lambda s=s: PROBES.create(s.name, **s.params)))
        for j in s.judges or []:
            checks.append((f"probes[{i}].judges", lambda j=j: JUDGES.get(j.name)))
    checks += [(f"judges[{i}]", lambda j=j: JUDGES.get(j.name)) for i, j in enumerate(cfg.judges)]
    checks.append(("model", lambda: _check_model(cfg.model, model_fingerprint)))
    checks.append(("data.train", lambda: load_train_conversations(cfg)))
    for where, check in checks:
        try:
            check()
        except (FtguardError, KeyError, ValueError) as e:
            errors.append(f"{where}: {e}")
    return errors


def _check_model(mcfg: ModelConfig, fingerprint: Any) -> None:
    from ftguard.errors import ModelError

    name = mcfg.name_or_path
    fingerprint(mcfg)  # raises for a missing embedded package
    if name.startswith((".", "/", "~")) and not Path(name).expanduser().exists():
        raise ModelError(f"Model folder '{name}' does not exist")


__all__ = ["ConfigError", "eval_model", "run_study", "validate"]
