"""Evaluate one model on the probes: generate (cached per item), judge (cached per verdict), and for
knowledge probes the judge-free reference log-likelihood. Returns ResultRows.

The model is loaded only if something is not cached yet, so a finished run re-reports in seconds.
A served model (EndpointModel) answers through chat completions and has no reference log-likelihood.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from ftguard.cache import JsonlCache, digest
from ftguard.config import Component, GenerationConfig
from ftguard.judges.base import Judge, Verdict
from ftguard.models.endpoint import EndpointModel
from ftguard.probes.base import Probe
from ftguard.results import ResultRow, clean_score

log = logging.getLogger(__name__)
JUDGE_CHUNK = 32


@dataclass
class ProbeRun:
    """A probe with its built judges (first = primary) and the generation length it uses."""

    probe: Probe
    judges: list[tuple[Component, Judge]]
    max_new_tokens: int
    loglik: bool = False

    def gen_key(self, model_fp: str, item_index: int, gen: GenerationConfig) -> str:
        item = self.probe.items[item_index]
        return digest("gen", model_fp, item.messages, self.max_new_tokens, gen.max_prompt_tokens)


@dataclass
class LazyModel:
    """Loads (model, tokenizer) on first use only."""

    loader: Callable[[], tuple[Any, Any]]
    _loaded: tuple[Any, Any] | None = field(default=None, init=False)

    def get(self) -> tuple[Any, Any]:
        if self._loaded is None:
            self._loaded = self.loader()
        return self._loaded


def cached_generate(keys: list[str], prompts: list[list[dict[str, str]]], lazy: LazyModel, cache: JsonlCache, *,
                    max_new_tokens: int, gen: GenerationConfig, desc: str) -> list[str]:
    """Responses for `prompts`, generating only those whose key is not cached (each batch saved at once)."""
    todo = [i for i, k in enumerate(keys) if k not in cache]
    if todo:
        model, tok = lazy.get()
        log.info("%s: generating %d/%d responses", desc, len(todo), len(keys))

        def save(idx: list[int], texts: list[str]) -> None:
            cache.put_many({keys[todo[j]]: t for j, t in zip(idx, texts, strict=True)})

        if isinstance(model, EndpointModel):  # a served model: chat completions, one saved batch at a time
            for start in range(0, len(todo), gen.batch_size):
                idx = list(range(start, min(start + gen.batch_size, len(todo))))
                save(idx, model.chat([prompts[todo[j]] for j in idx], max_new_tokens,
                                     max_prompt_tokens=gen.max_prompt_tokens))
                log.info("%s: %d/%d responses", desc, idx[-1] + 1, len(todo))
        else:
            from ftguard.generation import generate

            generate(model, tok, [prompts[i] for i in todo], max_new_tokens=max_new_tokens,
                     batch_size=gen.batch_size, max_prompt_tokens=gen.max_prompt_tokens, desc=desc, on_batch=save)
    return [cache.get(k) for k in keys]


def _responses(pr: ProbeRun, model_fp: str, lazy: LazyModel, gen: GenerationConfig, cache: JsonlCache,
               tag: str) -> list[str]:
    keys = [pr.gen_key(model_fp, i, gen) for i in range(len(pr.probe.items))]
    return cached_generate(keys, [it.messages for it in pr.probe.items], lazy, cache,
                           max_new_tokens=pr.max_new_tokens, gen=gen, desc=f"{tag}/{pr.probe.name}")


def _verdicts(pr: ProbeRun, spec: Component, judge: Judge, responses: list[str], cache: JsonlCache) -> list[Verdict]:
    """Every response's verdict. Each verdict is saved as soon as the judge gives it, so a killed run re-asks
    only what was not answered; an error verdict (a judge that failed) is never saved, so the next run asks
    again instead of keeping the axis unmeasured."""
    items = pr.probe.items
    keys = [digest("verdict", spec.name, spec.params, judge.version, it.id, it.messages, it.reference, it.meta, r)
            for it, r in zip(items, responses, strict=True)]
    fresh: dict[int, Verdict] = {}
    todo = [i for i, k in enumerate(keys) if k not in cache or cache.get(k).get("score") is None]
    bar = tqdm(total=len(todo), desc=f"judge {spec.name}/{pr.probe.name}", leave=False, disable=not todo)
    for start in range(0, len(todo), JUDGE_CHUNK):
        chunk = todo[start:start + JUDGE_CHUNK]
        for j, v in judge.stream([items[i] for i in chunk], [responses[i] for i in chunk]):
            fresh[chunk[j]] = v
            if not v.failed:
                cache.put_many({keys[chunk[j]]: {"score": clean_score(v.score), "label": v.label,
                                                 "explanation": v.explanation}})
            bar.update(1)
        missing = [i for i in chunk if i not in fresh]
        if missing:
            raise RuntimeError(f"judge {spec.name} gave no verdict for {len(missing)} of {len(chunk)} responses")
    bar.close()
    return [fresh[i] if i in fresh else Verdict(float(d["score"]), d["label"], d["explanation"])
            for i, k in enumerate(keys) for d in [cache.get(k)]]


def _logliks(pr: ProbeRun, model_fp: str, lazy: LazyModel, gen: GenerationConfig, cache: JsonlCache,
             tag: str) -> list[float | None]:
    items = pr.probe.items
    keys = [digest("loglik", model_fp, it.messages, it.reference, gen.max_prompt_tokens) for it in items]
    todo = [i for i, k in enumerate(keys) if k not in cache and items[i].reference]
    if todo:
        model, tok = lazy.get()
        if tok is None:  # a served model gives no log-likelihoods: the report shows n/a
            return [None] * len(items)
        from ftguard.generation import reference_loglik

        values = reference_loglik(model, tok, [items[i].messages for i in todo], [items[i].reference for i in todo],
                                  batch_size=max(1, gen.batch_size // 2), max_prompt_tokens=gen.max_prompt_tokens,
                                  desc=f"{tag}/{pr.probe.name} loglik")
        cache.put_many({keys[i]: v for i, v in zip(todo, values, strict=True)})
    return [cache.get(k) for k in keys]


def _choice_rows(pr: ProbeRun, tag: str, model_fp: str, lazy: LazyModel, cache: JsonlCache) -> list[ResultRow]:
    """Rows of a probe scored by log-likelihood (lm_eval): no reply and no judge; cached per item."""
    probe = pr.probe
    keys = [digest("choices", model_fp, probe.name, probe.version, dict(probe.scoring_params), it.id, it.messages,
                   it.reference) for it in probe.items]
    todo = [i for i, k in enumerate(keys) if k not in cache]
    if todo:
        model, tok = lazy.get()
        log.info("%s/%s: scoring %d/%d items by log-likelihood", tag, probe.name, len(todo), len(keys))
        got = probe.score(model, tok, [probe.items[i] for i in todo])
        if got is None:
            log.warning("%s/%s: skipped: %s gives no log-probabilities (a served model)", tag, probe.name, tag)
            return []
        cache.put_many({keys[i]: list(v) for i, v in zip(todo, got, strict=True)})
    judge = f"{probe.name}:{probe.scoring_params.get('metric', 'loglik')}"
    rows = []
    for item, key in zip(probe.items, keys, strict=True):
        score, label, explanation = cache.get(key)
        rows.append(ResultRow(model=tag, probe=probe.name, category=probe.category, item_id=item.id,
                              prompt=item.messages, reference=item.reference, response="", judge=judge,
                              score=clean_score(score), label=label, explanation=explanation, loglik=None,
                              subset=item.meta.get("subset"),
                              verdicts={judge: {"score": clean_score(score), "label": label, "explanation": explanation}}))
    return rows


def evaluate_model(tag: str, model_fp: str, lazy: LazyModel, probe_runs: list[ProbeRun], gen: GenerationConfig,
                   cache_root: Path) -> list[ResultRow]:
    """All probes on one model; every stage cached under `cache_root`."""
    gen_cache = JsonlCache(cache_root / "generations" / f"{model_fp}.jsonl")
    ll_cache = JsonlCache(cache_root / "loglik" / f"{model_fp}.jsonl")
    rows: list[ResultRow] = []
    for pr in probe_runs:
        if pr.probe.scoring == "choices":
            rows += _choice_rows(pr, tag, model_fp, lazy, JsonlCache(cache_root / "choices" / f"{model_fp}.jsonl"))
            continue
        responses = _responses(pr, model_fp, lazy, gen, gen_cache, tag)
        logliks = _logliks(pr, model_fp, lazy, gen, ll_cache, tag) if pr.loglik else [None] * len(responses)
        by_judge: dict[str, list[Verdict]] = {}
        for spec, judge in pr.judges:
            vcache = JsonlCache(cache_root / "verdicts" / f"{spec.name}.jsonl")
            by_judge[spec.name] = _verdicts(pr, spec, judge, responses, vcache)
        primary = pr.judges[0][0].name
        for i, (item, resp) in enumerate(zip(pr.probe.items, responses, strict=True)):
            v = by_judge[primary][i]
            rows.append(ResultRow(
                model=tag, probe=pr.probe.name, category=pr.probe.category, item_id=item.id, prompt=item.messages,
                reference=item.reference, response=resp, judge=primary, score=clean_score(v.score), label=v.label,
                explanation=v.explanation, loglik=logliks[i], subset=item.meta.get("subset"),
                verdicts={name: {"score": clean_score(vs[i].score), "label": vs[i].label,
                                 "explanation": vs[i].explanation} for name, vs in by_judge.items()},
            ))
    return rows
