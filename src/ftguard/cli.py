"""Command line: `ftguard run|eval|report|list|validate|judge-check`. Each command is a thin call into pipeline.py.

    ftguard run configs/quick.yaml train.steps=10
    ftguard run configs/openai_ft.yaml --dry-run
    ftguard eval --config configs/quick.yaml --model runs/quick/models/lora
    ftguard eval --endpoint http://127.0.0.1:8080/v1 --model smollm2
    ftguard report runs/quick
    ftguard list methods
    ftguard validate configs/quick.yaml
    ftguard judge-check --judge act_classifier --labels src/ftguard/assets/calibration/proficiency.jsonl
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from ftguard.errors import FtguardError

DEFAULT_EVAL_CONFIG = Path(__file__).resolve().parent / "assets" / "configs" / "eval.yaml"


def _cmd_run(args: argparse.Namespace) -> int:
    from ftguard.config import load_config

    cfg = load_config(args.config, args.overrides)
    if args.dry_run:
        from ftguard.hosted_plan import dry_run

        return dry_run(cfg, args.config, allow_paid=args.yes)
    from ftguard.pipeline import run_study, validate_config

    errors = validate_config(cfg)  # every config error now, before any model loads or anything is written
    if errors:
        raise FtguardError(f"{args.config}: {len(errors)} error(s):\n" + "\n".join(errors))

    summary = run_study(cfg, allow_paid=args.yes)  # hosted methods may submit paid jobs only with --yes (or submit: true)
    gate = summary.get("gate")
    return 1 if gate and not gate["passed"] else 0  # a config with a `gate:` fails the command when the gate fails


def _cmd_gate(args: argparse.Namespace) -> int:
    import json

    from ftguard.gate import (
        check_thresholds,
        format_verdict,
        from_manifest,
        parse_thresholds,
        run_gate,
    )

    max_drop, min_gain = parse_thresholds(args.max_drop, "max-drop"), parse_thresholds(args.min_gain, "min-gain")
    methods = args.methods
    if not max_drop and not min_gain:  # no thresholds given: the run's own `gate:` config
        manifest_path = Path(args.run_dir) / "manifest.json"
        spec = None
        if manifest_path.is_file():
            try:
                spec = from_manifest(json.loads(manifest_path.read_text(encoding="utf-8")))
            except ValueError as e:
                raise FtguardError(f"{manifest_path}: not valid JSON ({e})") from None
        if not spec:
            raise FtguardError(f"{args.run_dir}: no thresholds given and the run's config has no `gate:` section; "
                               "give e.g. --max-drop safety=2 knowledge=3 --min-gain proficiency=5")
        max_drop, min_gain = spec.get("max_drop") or {}, spec.get("min_gain") or {}
        methods = methods or spec.get("methods")
    check_thresholds(max_drop, min_gain)
    verdict = run_gate(Path(args.run_dir), max_drop, min_gain, methods,
                       junit=Path(args.junit) if args.junit else None, json_path=Path(args.json) if args.json else None)
    print(format_verdict(verdict))
    return 0 if verdict["passed"] else 1


def _cmd_align(args: argparse.Namespace) -> int:
    from ftguard.align import aligned_model_config
    from ftguard.config import AlignConfig, load_config

    cfg = load_config(args.config, args.overrides)
    aligned, record = aligned_model_config(cfg.model, cfg.align or AlignConfig())
    print(f"aligned model: {aligned.name_or_path}\n{record}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ftguard.config import load_config
    from ftguard.pipeline import eval_model

    overrides = list(args.overrides)
    if args.output_dir:
        overrides.append(f"output_dir={args.output_dir}")
    cfg = load_config(args.config or DEFAULT_EVAL_CONFIG, overrides)
    if args.api_key_env and not args.endpoint:  # a saved served-model folder may name this variable
        cfg = cfg.model_copy(update={"model": cfg.model.model_copy(
            update={"allowed_key_envs": [*cfg.model.allowed_key_envs, args.api_key_env]})})
    if args.endpoint:  # a served model: --model is the name the server serves
        from pydantic import ValidationError

        from ftguard.config import ModelConfig, format_validation_error

        fields = cfg.model.model_dump(exclude={"name_or_path", "endpoint", "api_key_env"})
        try:
            served = ModelConfig.model_validate({**fields, "name": args.model, "endpoint": args.endpoint,
                                                 "api_key_env": args.api_key_env or cfg.model.api_key_env})
        except ValidationError as err:
            raise FtguardError(format_validation_error(err, "--endpoint/--model")) from None
        cfg = cfg.model_copy(update={"model": served})
    eval_model(cfg, args.model, tag=args.tag)
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from ftguard.report import build_report, print_summary

    for run_dir in args.run_dirs:
        if not (Path(run_dir) / "results.jsonl").exists():
            raise FtguardError(f"{run_dir}: no results.jsonl here; is it a finished run directory?")
        print_summary(build_report(Path(run_dir)))
        print(f"wrote {Path(run_dir) / 'report.md'} and report.html")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from ftguard.registry import JUDGES, METHODS, PROBES, load_plugins

    load_plugins()
    registry = {"methods": METHODS, "probes": PROBES, "judges": JUDGES}[args.kind]
    for name in registry.names():
        print(registry.describe(name))
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    from ftguard.pipeline import validate

    errors = validate(args.config, args.overrides)
    for e in errors:
        print(e, file=sys.stderr)
    print(f"{args.config}: {'OK' if not errors else f'{len(errors)} error(s)'}")
    return 1 if errors else 0


def _cmd_judge_check(args: argparse.Namespace) -> int:
    import yaml

    from ftguard.judge_check import check, save_agreement

    params = {}
    for kv in args.set or []:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise FtguardError(f"--set {kv!r}: expected key=value, e.g. --set model=gpt-4o")
        params[key] = yaml.safe_load(value)
    res, text = check(args.judge, args.labels, params, show=args.show)
    print(text)
    if args.save:
        save_agreement(res)
        print(f"\nrecorded in the calibration agreement file for the report ({args.judge})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ftguard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging and tracebacks")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="fine-tune with every method and evaluate base + tuned models")
    r.add_argument("config")
    r.add_argument("overrides", nargs="*", help="key=value, e.g. train.steps=10 methods.1.rank=8")
    r.add_argument("--dry-run", action="store_true",
                   help="hosted methods: export and check the training file, print tokens and cost; submit nothing")
    r.add_argument("--yes", action="store_true", help="allow hosted methods to submit paid fine-tuning jobs")
    r.set_defaults(fn=_cmd_run)
    a = sub.add_parser("align", help="align the config's model (its `align:` section, or the defaults) and cache it")
    a.add_argument("config")
    a.add_argument("overrides", nargs="*")
    a.set_defaults(fn=_cmd_align)
    g = sub.add_parser("gate", help="pass/fail a finished run on its paired 95%% CIs (exit 0 pass, 1 fail, 2 error)",
                       description="Each check passes when the lower end of the paired 95% CI of a method's change "
                       "vs base (worst case when judges erred) clears its threshold. KEY is a category (proficiency, "
                       "safety, knowledge) or a probe of the run. Without thresholds, the run's `gate:` config is used.")
    g.add_argument("run_dir")
    g.add_argument("--max-drop", nargs="*", metavar="KEY=POINTS", help="fail when a drop larger than POINTS is not ruled out")
    g.add_argument("--min-gain", nargs="*", metavar="KEY=POINTS", help="fail unless a gain of at least POINTS is shown")
    g.add_argument("--methods", nargs="*", help="the methods to gate (default: every method of the run)")
    g.add_argument("--junit", help="JUnit XML path (default RUN_DIR/gate.junit.xml)")
    g.add_argument("--json", help="verdict JSON path (default RUN_DIR/gate.json)")
    g.set_defaults(fn=_cmd_gate)
    e = sub.add_parser("eval", help="evaluate one model on the probes")
    e.add_argument("--model", required=True,
                   help="hub id, local path, embedded:NAME or RUN/models/LABEL; with --endpoint: the served name")
    e.add_argument("--endpoint", help="base URL of an OpenAI-compatible API serving --model, "
                                      "e.g. http://127.0.0.1:8080/v1 (vLLM, Ollama, llama.cpp server, ...)")
    e.add_argument("--api-key-env", help="environment variable holding the endpoint's key (default OPENAI_API_KEY; "
                                         "local servers need none)")
    e.add_argument("--config", help="config whose probes/judges to use (default: the builtin eval config)")
    e.add_argument("--tag", default="base", help="name of the model in the report")
    e.add_argument("--output-dir")
    e.add_argument("overrides", nargs="*")
    e.set_defaults(fn=_cmd_eval)
    rep = sub.add_parser("report", help="rebuild the report from saved results (no model is loaded)")
    rep.add_argument("run_dirs", nargs="+")
    rep.set_defaults(fn=_cmd_report)
    ls = sub.add_parser("list", help="list registered plug-ins")
    ls.add_argument("kind", choices=["methods", "probes", "judges"])
    ls.set_defaults(fn=_cmd_list)
    v = sub.add_parser("validate", help="report every config error at once")
    v.add_argument("config")
    v.add_argument("overrides", nargs="*")
    v.set_defaults(fn=_cmd_validate)
    jc = sub.add_parser("judge-check", help="measure a judge against human labels: accuracy, kappa, confusion")
    jc.add_argument("--judge", required=True, help="registered judge name (ftguard list judges)")
    jc.add_argument("--labels", required=True, help="labelled JSONL, e.g. src/ftguard/assets/calibration/safety.jsonl")
    jc.add_argument("--set", action="append", metavar="KEY=VALUE", help="judge parameter, e.g. --set model=gpt-4o")
    jc.add_argument("--show", type=int, default=20, help="print at most this many disagreements")
    jc.add_argument("--save", action="store_true", help="record the result for the report (agreement.json)")
    jc.set_defaults(fn=_cmd_judge_check)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # overrides may follow flags: run C --yes train.steps=1
    stray = [x for x in extra if x.startswith("-") or "=" not in x or not hasattr(args, "overrides")]
    if stray:
        parser.error(f"unrecognized arguments: {' '.join(stray)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return args.fn(args)
    except FtguardError as e:
        if args.verbose:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: what was finished is saved; re-run the same command to resume", file=sys.stderr)
        return 130


def entry() -> None:
    """The `ftguard` console script. After Ctrl-C it exits at once: requests still in flight to a hanging
    server are abandoned (their threads are not joined), and everything finished is already on disk."""
    code = main()
    if code == 130:
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)
    sys.exit(code)


if __name__ == "__main__":
    entry()
