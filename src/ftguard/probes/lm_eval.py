"""Probe `lm_eval`: multiple-choice benchmarks scored by log-likelihood through lm-evaluation-harness, no judge
(forgetting as "LoRA Learns Less and Forgets Less", Biderman et al. 2024, measures it: mean accuracy on
HellaSwag, ARC-Challenge, WinoGrande, ...). The base model and every tuned model answer the same documents;
lm-eval's logged samples give one result per document, so each task gets the paired bootstrap CI, McNemar test
and flipped examples every other probe gets (item meta `subset` = the task).

    probes: [{name: lm_eval, tasks: [arc_easy, arc_challenge, hellaswag, piqa, winogrande], n_per_task: 100}]

Shipped tasks (assets/data/mc, ftguard.data.mc) run offline: arc_easy, arc_challenge, hellaswag (1,000-record
sample), piqa, winogrande, openbookqa, boolq, mmlu (cloze), mmlu_letters, truthfulqa_mc1. Any other lm-eval
task name (ifeval, mmlu_pro, ...) is built by lm-eval's own registry and needs the Hugging Face hub; offline,
building the probe says so. A model served behind an API gives no log-probabilities: the probe is skipped for it.

The model ftguard already has loaded is wrapped in lm-eval's HFLM (a tuned adapter is merged into the same base
weights); by default (`share_prefix`) the prefix shared by every question (the system turn) and each document's
context run once, and only the choices run per choice, batched (probes/_shared_prefix.py); `chat_template`
applies the model's chat template to each question as the SmolLM2 card's lighteval runs did.
"""

from __future__ import annotations

import difflib
import logging
from collections import defaultdict
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Literal

from ftguard.data.mc import NOTES, load_mc, local_tasks
from ftguard.errors import ConfigError
from ftguard.probes._select import sample
from ftguard.probes.base import Probe, ProbeItem
from ftguard.registry import PROBES

log = logging.getLogger(__name__)
VERSION = 1
DEFAULT_TASKS = ("arc_easy", "arc_challenge", "hellaswag", "piqa", "winogrande")
META = frozenset({"task", "doc_index", "gold", "subset"})


def _hub_task_names() -> list[str]:
    return sorted(_task_manager(True).all_tasks)


def _hub_docs(task: str) -> list[dict[str, Any]]:
    """The evaluation documents of a registered lm-eval task (downloads its dataset from the hub)."""
    from lm_eval.tasks import get_task_dict

    try:
        t = get_task_dict([task], _task_manager(True))[task]
        docs = list(t.eval_docs)
    except Exception as e:  # noqa: BLE001 - datasets raises many kinds of network errors
        raise ConfigError(f"lm_eval: task {task!r} is not shipped with ftguard and lm-eval could not load it "
                          f"({type(e).__name__}: {str(e)[:200]}); it needs the Hugging Face hub. Offline, use a "
                          f"shipped task: {', '.join(local_tasks())}") from None
    return [{"doc_id": str(i), "query": str(t.doc_to_text(d)), "choices": t.doc_to_choice(d)
             if t.OUTPUT_TYPE == "multiple_choice" else [], "gold": t.doc_to_target(d), "raw": d}
            for i, d in enumerate(docs)]


def _check_names(tasks: Sequence[str], hub: bool) -> None:
    local = local_tasks()
    unknown = [t for t in tasks if t not in local]
    if not unknown:
        return
    if not hub:
        names = local
    else:
        try:
            names = local + _hub_task_names()
        except Exception:  # noqa: BLE001
            names = local
    for t in unknown:
        if t not in names:
            close = difflib.get_close_matches(t, names, n=3)
            hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
            more = "" if hub else " (tasks from lm-eval's registry need `hub: true` and the Hugging Face hub)"
            raise ConfigError(f"lm_eval: unknown task {t!r}.{hint} Shipped tasks: {', '.join(local)}{more}")


@PROBES.register("lm_eval", disjoint="multiple-choice benchmarks; no anchor, replay or alignment source draws on them")
def lm_eval(tasks: list[str] | None = None, n_per_task: int | None = 100, seed: int = 0,
            metric: Literal["acc_norm", "acc"] = "acc_norm", chat_template: bool = True, batch_size: int = 16,
            hub: bool = False, n: int | None = None, share_prefix: bool = True) -> Probe:
    """Multiple-choice tasks through lm-evaluation-harness, scored by log-likelihood (judge-free).

    Args:
        tasks: Task names: shipped ones run offline; with `hub: true`, any lm-eval task name.
        n_per_task: Documents per task (a seeded sample; the same for every model); None = all.
        seed: Seed for the choice of documents.
        metric: "acc_norm" (log-likelihood divided by the choice's length in characters, as the SmolLM2 card
            reports) or "acc" (raw log-likelihood).
        chat_template: Wrap each question in the model's chat template (user turn; the choice is the reply).
        batch_size: lm-eval batch size (requests of one batch are scored in one forward pass).
        hub: Allow task names that are not shipped (lm-eval's registry; needs the Hugging Face hub).
        n: Total documents, split evenly over the tasks (overrides n_per_task; judge-check and tests use it).
        share_prefix: Run each shared prefix once (the system turn; a document's context) and only the rest of
            each choice on its key/value cache (probes/_shared_prefix.py; same log-likelihoods to float rounding);
            false: lm-eval's HFLM loop, every choice from scratch.
    """
    tasks = list(tasks or DEFAULT_TASKS)
    if not tasks or len(set(tasks)) != len(tasks):
        raise ConfigError(f"lm_eval: tasks must be a non-empty list without repeats, got {tasks}")
    if batch_size < 1 or (n_per_task is not None and n_per_task < 1) or (n is not None and n < 1):
        raise ConfigError("lm_eval: batch_size, n_per_task and n must be >= 1")
    _check_names(tasks, hub)
    per_task = n_per_task if n is None else max(1, n // len(tasks))
    items: list[ProbeItem] = []
    for task in tasks:
        docs = load_mc(task) if task in local_tasks() else _hub_docs(task)
        indexed = list(enumerate(docs))
        chosen = indexed if per_task is None else sample(indexed, min(per_task, len(indexed)), seed)
        for index, d in sorted(chosen):
            gold_text = d["choices"][d["gold"]] if d.get("choices") and isinstance(d["gold"], int) else str(d["gold"])
            items.append(ProbeItem(id=f"{task}/{d['doc_id']}", messages=[{"role": "user", "content": d["query"]}],
                                   reference=gold_text, meta={"task": task, "doc_index": index, "gold": d["gold"],
                                                              "subset": task}))
    settings = {"tasks": tasks, "metric": metric, "chat_template": chat_template, "num_fewshot": 0}
    return Probe(name="lm_eval", category="knowledge", version=VERSION, items=items, default_judge="",
                 max_new_tokens=1, provides=META, scoring="choices", scoring_params=settings,
                 score=lambda model, tok, its: score_items(model, tok, its, metric, chat_template, batch_size, hub,
                                                           share_prefix),
                 description="Multiple-choice benchmarks (lm-evaluation-harness), log-likelihood accuracy; no judge. "
                             + "; ".join(f"{t}: {NOTES[t]}" for t in tasks if t in NOTES))


@lru_cache(maxsize=2)
def _task_manager(registry: bool) -> Any:
    """lm-eval's TaskManager, built once per process: indexing lm-eval's own task YAMLs (needed only for
    registry tasks) takes about 12 s, and simple_evaluate would do it on every call."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=registry)


def _local_task_config(task: str, docs: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    import datasets

    multi_input = task == "winogrande"  # partial scoring: the choices are contexts, the continuation is shared
    return {
        "task": f"ftguard_{task}", "custom_dataset": lambda **_: {"test": datasets.Dataset.from_list(docs)},
        "test_split": "test", "output_type": "multiple_choice",
        "doc_to_text": (lambda d: d["gold"]) if multi_input else (lambda d: d["query"]),
        "doc_to_choice": (lambda d: d["contexts"]) if multi_input else (lambda d: d["choices"]),
        "doc_to_target": (lambda d: d["continuation"]) if multi_input else (lambda d: d["gold"]),
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": True} for m in ("acc", "acc_norm")],
        "metadata": {"version": 1.0},
    }


def score_items(model: Any, tok: Any, items: Sequence[ProbeItem], metric: str, chat_template: bool,
                batch_size: int, hub: bool, share_prefix: bool = True) -> list[tuple[float, str, str]] | None:
    """(score, label, explanation) per item from lm-eval's logged samples; None for a model without weights."""
    if tok is None:  # an endpoint: chat completions give no log-probabilities of given continuations
        return None
    import lm_eval as harness
    from lm_eval.models.huggingface import HFLM

    by_task: dict[str, list[int]] = defaultdict(list)
    for k, it in enumerate(items):
        by_task[it.meta["task"]].append(k)
    configs, wanted, names = [], {}, {}
    for task, ks in by_task.items():
        if task in local_tasks():
            all_docs = load_mc(task)
            docs = [all_docs[items[k].meta["doc_index"]] for k in ks]
            configs.append(_local_task_config(task, docs, metric))
            names[f"ftguard_{task}"] = ks
        else:
            configs.append(task)
            wanted[task] = [items[k].meta["doc_index"] for k in ks]
            names[task] = ks
    device = str(next(model.parameters()).device)
    from ftguard.probes._shared_prefix import SharedPrefixLM

    lm = (SharedPrefixLM if share_prefix else HFLM)(pretrained=model, tokenizer=tok, batch_size=batch_size,
                                                    device=device)
    for name in ("lm-eval", "lm_eval"):
        logging.getLogger(name).setLevel(logging.WARNING)
    res = harness.simple_evaluate(model=lm, tasks=configs, num_fewshot=0, log_samples=True, bootstrap_iters=0,
                                  apply_chat_template=chat_template, samples=wanted or None,
                                  verbosity="WARNING", task_manager=_task_manager(bool(wanted)))
    out: list[tuple[float, str, str] | None] = [None] * len(items)
    for task_name, ks in names.items():
        samples = res["samples"][task_name]
        local = task_name.startswith("ftguard_")  # local: doc_id is the position among the docs passed in
        by_doc = {j if local else items[k].meta["doc_index"]: k for j, k in enumerate(ks)}
        for s in samples:
            k = by_doc[s["doc_id"]]
            value = float(s.get(metric, s.get("acc", float("nan"))))
            lls = [round(float(r[0]), 3) for r in s.get("filtered_resps", s.get("resps", []))
                   if isinstance(r, (list, tuple))]
            out[k] = (value, "correct" if value >= 0.5 else "wrong",
                      f"{metric}={value:g}; gold {s.get('target')}; choice log-likelihoods {lls}")
    missing = [items[k].id for k, v in enumerate(out) if v is None]
    if missing:
        raise RuntimeError(f"lm_eval returned no sample for {len(missing)} items, e.g. {missing[:3]}")
    return out  # type: ignore[return-value]
