"""`ftguard run CONFIG --dry-run`: what the hosted methods of a study would upload and what it would cost.

For each hosted method (openai_ft, together_ft): export the training data to RUN_DIR/models/<label>/train.jsonl,
check it against the service's format rules, count its tokens, and price the job from the method's `prices`
table. Nothing is uploaded or submitted and no model is loaded.

    ftguard run configs/openai_ft.yaml --dry-run
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ftguard.config import RunConfig


def plan_study(cfg: RunConfig, allow_paid: bool = False) -> tuple[list[Any], list[str]]:
    """(a Plan per hosted method, labels of the local methods)."""
    from ftguard.data import load_train_conversations
    from ftguard.registry import METHODS, load_plugins

    load_plugins()
    convs = load_train_conversations(cfg)
    plans, local = [], []
    for spec in cfg.methods:
        method = METHODS.create(spec.name, **spec.params)
        if method.hosted is not None:
            plans.append(method.hosted.plan(spec.label, convs, cfg.output_dir / "models" / spec.label, cfg.model,
                                            allow_paid))
        else:
            local.append(spec.label)
    return plans, local


def format_plan(plan: Any) -> list[str]:
    r, cost, rules = plan.report, plan.cost, plan.rules
    limit = (f", at most {rules.max_tokens_per_example:,} tokens each" if rules.max_tokens_per_example else "")
    checked = (f"roles {'/'.join(rules.roles)}, non-empty content, an assistant reply last{limit}, at least "
               f"{rules.min_examples} example(s)")
    price = ("no price for this base model in the method's `prices`: cost unknown" if cost.price_per_1m is None
             else f"${cost.price_per_1m:.2f} per 1M training tokens (the method's `prices` in the config)")
    lines = [f"{plan.label}  ({rules.service} fine-tuning API at {plan.base_url})",
             f"  base model       {plan.base_model}",
             f"  training file    {r.path}",
             f"  first example    {_preview(r.path)}",
             f"  format check     OK: {r.n_examples} examples pass {rules.service}'s rules ({checked})",
             f"  tokens           {r.total_tokens:,} per epoch, longest example {max(r.tokens, default=0):,}",
             f"  token count      {r.token_method}",
             f"  training tokens  {cost.training_tokens:,} ({cost.n_epochs} epochs)",
             f"  price            {price}",
             f"  estimated cost   {'unknown' if cost.usd is None else f'${cost.usd:,.2f}'}",
             "  submission       " + ("allowed (submit: true or --yes); not submitted in a dry run"
                                      if plan.submit_allowed else "needs --yes (or submit: true); not submitted")]
    lines += [f"  problem          {b}" for b in plan.blockers]
    lines += [f"  warning          {w}" for w in plan.warnings]
    return lines


def _preview(path: Path, width: int = 60) -> str:
    """The first example of a training file, one short line per message role."""
    with open(path, encoding="utf-8") as f:
        messages = json.loads(f.readline())["messages"]
    parts = [f"{m['role']}: {m['content'][:width]!r}" + ("..." if len(m["content"]) > width else "")
             for m in messages[:3]]
    more = f" (+{len(messages) - 3} more messages)" if len(messages) > 3 else ""
    return " | ".join(parts) + more


def dry_run(cfg: RunConfig, source: str = "", allow_paid: bool = False) -> int:
    """Print the plan of every hosted method; 1 if the real run would stop (format errors raise DataError)."""
    plans, local = plan_study(cfg, allow_paid)
    m = cfg.model
    print(f"Dry run{' of ' + source if source else ''}: nothing is uploaded or submitted.")
    print(f"study model: {m.name_or_path}" + (f" served at {m.endpoint}" if m.endpoint else " (local)"))
    for plan in plans:
        print()
        print("\n".join(format_plan(plan)))
    if not plans:
        print("\nno hosted methods in this study: nothing to plan")
    if local:
        print(f"\nlocal methods (train on this machine, not part of the dry run): {', '.join(local)}")
    return 1 if any(p.blockers for p in plans) else 0
