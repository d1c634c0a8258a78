"""Build ftguard's safety-alignment data (builtin:safety_alignment) by distillation from an aligned teacher whose
licence allows it, on prompts no probe uses, keeping only the replies the offline judges accept.

    python benchmarks/install_qwen.py                                   # the teacher (Apache-2.0 upstream)
    python scripts/build_alignment_data.py --teacher ~/.cache/ftguard/qwen/qwen2.5-coder-0.5b-instruct-q5_0.gguf

Prompts (each source minus every item a registered probe reserves: pools.py; the test suite checks the result):
  harmful   AdvBench, HarmBench (standard, contextual) and JailbreakBench requests -> keep clean refusals
            (refusal_classifier: full_refusal, or refusal_keywords while the classifier has no weights; and the
            reply opens by declining and gives no steps, list or code: clean_refusal)
  hateful   ToxiGen hate statements -> keep pushback (counter_speech and safety_classifier both: counters, and at
            least 20 words: a bare "I can't assist with that" declines, it does not push back)
  safe      XSTest safe prompts -> keep answers (refusal_classifier: full_compliance), so the model does not learn
            to refuse everything
  general   Dolly questions with Dolly's own human-written answers (CC BY-SA 3.0, shipped in assets/data/dolly),
            not distilled: general helpfulness from people, and no teacher time spent on it
The teacher answers greedily with its own chat template; the data keep the prompt and the teacher's reply, with the
source, the prompt id and the judges' verdicts, in assets/data/safety_alignment/safety_alignment.jsonl (README.md
next to it records the run). Teacher replies are cached in --work so a re-run only filters again.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ftguard.anchor_prompts import _pool  # every source minus the reserved items
from ftguard.data.builtin import (
    BUILTIN_DATA,
    load_dolly,
    load_harmbench,
    load_jbb,
    load_toxigen,
    load_xstest,
)
from ftguard.pools import exclude_reserved, leaks
from ftguard.probes.base import ProbeItem
from ftguard.probes.harmful_refusal import message

OUT = BUILTIN_DATA / "safety_alignment" / "safety_alignment.jsonl"


def prompts(max_per_source: int) -> list[dict]:
    harm = [{"source": "harmful", "id": f"harmbench/{r['id']}", "text": message(r), "behavior": r["behavior"]}
            for r in load_harmbench() if r["kind"] in ("standard", "contextual")]
    harm += [{"source": "harmful", "id": f"jbb/{r['index']}", "text": r["goal"], "behavior": r["goal"]} for r in load_jbb()]
    pool = _pool()
    harm += [{"source": "harmful", "id": r["id"].removeprefix("anchor/"), "text": r["text"], "behavior": r["text"]}
             for r in pool["advbench"]]
    harm = exclude_reserved(harm, lambda r: r["behavior"])
    hate_texts = {r["text"] for r in load_toxigen() if r["label"] == "hate"}
    hate = [{"source": "hateful", "id": r["id"].removeprefix("anchor/"), "text": r["text"]} for r in pool["toxigen"]
            if r["text"] in hate_texts]
    safe_ids = {f"anchor/xstest/{r['id']}" for r in load_xstest() if r["label"] == "safe"}
    safe = [{"source": "safe", "id": r["id"].removeprefix("anchor/"), "text": r["text"]} for r in pool["xstest"]
            if r["id"] in safe_ids]
    answers = {f"anchor/dolly/{r['id']}": r["response"].strip() for r in load_dolly()}
    general = [{"source": "general", "id": r["id"].removeprefix("anchor/"), "text": r["text"], "reply": answers[r["id"]]}
               for r in pool["dolly"] if len(answers[r["id"]].split()) >= 3]
    out = []
    for group in (harm, hate, safe, general):
        seen, kept = set(), []
        for r in group:
            if r["text"] not in seen:
                seen.add(r["text"])
                kept.append(r)
        out += kept[:max_per_source]
    assert not leaks([r["text"] for r in out]), "an alignment prompt leaks a probe item"
    return out


def teacher_replies(teacher: str, rows: list[dict], work: Path, max_new_tokens: int) -> dict[str, str]:
    from ftguard.config import ModelConfig
    from ftguard.generation import generate
    from ftguard.models import load_model

    cache = work / "teacher.jsonl"
    done = {}
    if cache.exists():
        done = {json.loads(x)["id"]: json.loads(x)["reply"] for x in cache.read_text().splitlines()}
    done.update({r["id"]: r["reply"] for r in rows if "reply" in r})  # human answers: nothing to generate
    todo = [r for r in rows if r["id"] not in done]
    if todo:
        model, tok = load_model(ModelConfig(name_or_path=teacher))
        with cache.open("a") as f:
            def save(idx: list[int], texts: list[str]) -> None:
                for i, t in zip(idx, texts, strict=True):
                    f.write(json.dumps({"id": todo[i]["id"], "reply": t}) + "\n")
                    done[todo[i]["id"]] = t
                f.flush()

            generate(model, tok, [[{"role": "user", "content": r["text"]}] for r in todo], max_new_tokens=max_new_tokens,
                     batch_size=16, max_prompt_tokens=384, desc="teacher", on_batch=save)
    return done


def clean_refusal(reply: str) -> bool:
    """A harmful request's reply worth imitating: it opens by declining (within its first 120 characters) and
    goes on with no steps, list, code or "here is" (the keyword test alone keeps "X is illegal. 1. ...")."""
    from ftguard.judges.refusal_classifier import HELPS, REFUSAL

    first = REFUSAL.search(reply)
    return first is not None and first.start() < 120 and not HELPS.search(reply)


def bare_refusal(reply: str) -> bool:
    """"I'm sorry, but I can't assist with that." to a hateful statement declines; it does not push back, and the
    counter-speech judges miss the difference, so such replies are not kept as counter-speech."""
    return len(reply.split()) < 20


def judge(rows: list[dict], replies: dict[str, str]) -> list[dict]:
    from ftguard.registry import JUDGES, load_plugins

    load_plugins()
    from ftguard.judges.refusal_classifier import PATH

    refusal_name = "refusal_classifier" if PATH.is_file() else "refusal_keywords"  # the learnt one once it is trained
    refusal, counter, safety = (JUDGES.create(n) for n in (refusal_name, "counter_speech", "safety_classifier"))
    kept = []
    for source, expected in (("harmful", "refuse"), ("safe", "comply")):
        group = [r for r in rows if r["source"] == source and replies[r["id"]].strip()]
        items = [ProbeItem(r["id"], [{"role": "user", "content": r["text"]}], None,
                           {"expected": expected, "behavior": r.get("behavior", r["text"])}) for r in group]
        for r, v in zip(group, refusal(items, [replies[r["id"]] for r in group]), strict=True):
            if v.score == 1.0 and (source == "safe" or clean_refusal(replies[r["id"]])):
                kept.append({**r, "verdicts": {refusal_name: v.label}})
    group = [r for r in rows if r["source"] == "hateful" and replies[r["id"]].strip()]
    items = [ProbeItem(r["id"], [{"role": "user", "content": r["text"]}], None, {"statement": r["text"], "group": ""})
             for r in group]
    texts = [replies[r["id"]] for r in group]
    for r, a, b in zip(group, counter(items, texts), safety(items, texts), strict=True):
        if a.label == b.label == "counters" and not bare_refusal(replies[r["id"]]):
            kept.append({**r, "verdicts": {"counter_speech": a.label, "safety_classifier": b.label}})
    kept += [{**r, "verdicts": {}} for r in rows if r["source"] == "general"]
    return kept


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", required=True, help="the teacher model: a .gguf path, folder or hub id")
    ap.add_argument("--work", type=Path, default=Path("runs/alignment_data"))
    ap.add_argument("--max-per-source", type=int, default=400)
    ap.add_argument("--max-new-tokens", type=int, default=96)
    ap.add_argument("--hateful", action="store_true",
                    help="keep the teacher's counter-speech too (off: read on 2026-12-07, the 14 replies the judges "
                         "passed were mostly not pushback: 3 agreed with the statement, others were incoherent)")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = prompts(args.max_per_source)
    replies = teacher_replies(args.teacher, rows, args.work, args.max_new_tokens)
    kept = [r for r in judge(rows, replies) if args.hateful or r["source"] != "hateful"]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with OUT.open("w", encoding="utf-8") as f:
        for r in kept:
            f.write(json.dumps({"messages": [{"role": "user", "content": r["text"]},
                                             {"role": "assistant", "content": replies[r["id"]].strip()}],
                                "source": r["source"], "prompt_id": r["id"],
                                "teacher": "dolly (human)" if "reply" in r else Path(args.teacher).name,
                                "verdicts": r["verdicts"]}, ensure_ascii=False) + "\n")
    counts = {s: (sum(r["source"] == s for r in rows), sum(r["source"] == s for r in kept))
              for s in ("harmful", "hateful", "safe", "general")}
    print(f"wrote {OUT}: {len(kept)} of {len(rows)} prompts kept, per source (prompts, kept): {counts} "
          f"in {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
