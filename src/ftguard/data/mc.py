"""Multiple-choice benchmarks shipped in assets/data/mc (see its README), read into one document shape that the
`lm_eval` probe hands to lm-evaluation-harness as offline tasks.

    docs = load_mc("arc_easy")       # [{"doc_id": "Mercury_417466", "query": "Question: ...\\nAnswer:",
                                     #   "choices": [" Sunlight is ...", ...], "gold": 0}, ...]

Prompts follow lm-evaluation-harness's own task definitions (arc_easy.yaml, hellaswag/utils.py, piqa.yaml,
winogrande/preprocess_winogrande.py, openbookqa.yaml, boolq.yaml), except `mmlu`, which is the cloze form the
SmolLM2 model card reports ("MMLU (cloze)": lighteval's `mmlu_cloze_prompt`: no letters, the answer texts are
the continuations); `mmlu_letters` is lm-eval's lettered form. WinoGrande is a partial-scoring task: the choices
are the two sentence prefixes and the shared continuation is scored (`contexts`, `continuation`).
"""

from __future__ import annotations

import csv
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from ftguard.data.builtin import BUILTIN_DATA
from ftguard.errors import DataError

MC = BUILTIN_DATA / "mc"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DataError(f"{path}:{lineno}: invalid JSON: {e.msg}") from None
    return rows


def _arc(name: str) -> list[dict[str, Any]]:  # lm-eval arc_*.yaml: "Question: {{question}}\nAnswer:"
    out = []
    for r in _jsonl(MC / "arc" / f"{name}-Test.jsonl"):
        labels = [c["label"] for c in r["question"]["choices"]]
        out.append({"doc_id": r["id"], "query": f"Question: {r['question']['stem']}\nAnswer:",
                    "choices": [c["text"] for c in r["question"]["choices"]], "gold": labels.index(r["answerKey"])})
    return out


def _hellaswag_text(text: str) -> str:  # lm-eval hellaswag/utils.py preprocess
    text = text.strip().replace(" [title]", ". ")
    text = re.sub("\\[.*?\\]", "", text)
    return text.replace("  ", " ")


def _hellaswag() -> list[dict[str, Any]]:
    out = []
    for r in _jsonl(MC / "hellaswag" / "hellaswag_val_sample1000.jsonl"):
        ctx = r["ctx_a"] + " " + r["ctx_b"].capitalize()
        out.append({"doc_id": str(r["ind"]), "query": _hellaswag_text(r["activity_label"] + ": " + ctx),
                    "choices": [_hellaswag_text(e) for e in r["endings"]], "gold": int(r["label"])})
    return out


def _labels(path: Path, n: int) -> list[int]:
    labels = [int(x) for x in path.read_text().split()]
    if len(labels) != n:
        raise DataError(f"{path}: {len(labels)} labels for {n} rows")
    return labels


def _piqa() -> list[dict[str, Any]]:  # lm-eval piqa.yaml
    rows = _jsonl(MC / "piqa" / "valid.jsonl")
    labels = _labels(MC / "piqa" / "valid-labels.lst", len(rows))
    return [{"doc_id": str(i), "query": f"Question: {r['goal']}\nAnswer:", "choices": [r["sol1"], r["sol2"]],
             "gold": y} for i, (r, y) in enumerate(zip(rows, labels, strict=True))]


def _winogrande() -> list[dict[str, Any]]:  # lm-eval preprocess_winogrande.py: partial scoring
    out = []
    for r in _jsonl(MC / "winogrande" / "dev.jsonl"):
        cut = r["sentence"].index("_")
        out.append({"doc_id": r["qID"], "contexts": [r["sentence"][:cut] + r["option1"], r["sentence"][:cut] + r["option2"]],
                    "continuation": r["sentence"][cut + 1:].strip(), "gold": int(r["answer"]) - 1,
                    "query": r["sentence"], "choices": [r["option1"], r["option2"]]})
    return out


def _openbookqa() -> list[dict[str, Any]]:  # lm-eval openbookqa.yaml: doc_to_text question_stem
    out = []
    for r in _jsonl(MC / "openbookqa" / "test.jsonl"):
        labels = [c["label"] for c in r["question"]["choices"]]
        out.append({"doc_id": r["id"], "query": r["question"]["stem"],
                    "choices": [c["text"] for c in r["question"]["choices"]], "gold": labels.index(r["answerKey"])})
    return out


def _boolq() -> list[dict[str, Any]]:  # lm-eval boolq.yaml: "{{passage}}\nQuestion: {{question}}?\nAnswer:"
    return [{"doc_id": str(r["idx"]), "query": f"{r['passage']}\nQuestion: {r['question']}?\nAnswer:",
             "choices": ["no", "yes"], "gold": int(str(r["label"]).lower() == "true")}
            for r in _jsonl(MC / "boolq" / "val.jsonl")]


def _mmlu(letters: bool) -> list[dict[str, Any]]:
    out = []
    for path in sorted((MC / "mmlu" / "test").glob("*_test.csv")):
        subject = path.name.removesuffix("_test.csv")
        topic = subject.replace("_", " ")
        with path.open(encoding="utf-8", newline="") as f:
            for i, r in enumerate(csv.DictReader(f)):
                choices = [r[f"choice{k}"] for k in range(4)]
                if letters:  # lm-eval mmlu default template
                    body = "\n".join(f"{L}. {c}" for L, c in zip("ABCD", choices))
                    query = (f"The following are multiple choice questions (with answers) about {topic}.\n\n"
                             f"{r['question'].strip()}\n{body}\nAnswer:")
                    choices = list("ABCD")
                else:  # lighteval mmlu_cloze_prompt (the SmolLM2 card's "MMLU (cloze)")
                    query = f"The following are questions about {topic}.\nQuestion: {r['question']}\nAnswer:"
                out.append({"doc_id": f"{subject}/{i}", "query": query, "choices": choices, "gold": int(r["answer"])})
    return out


def _truthfulqa_mc1() -> list[dict[str, Any]]:  # zero-shot "Q: ...\nA:" (lm-eval prepends a 6-shot QA primer)
    rows = json.loads((MC / "truthfulqa" / "mc_task.json").read_text(encoding="utf-8"))
    out = []
    for i, r in enumerate(rows):
        choices = list(r["mc1_targets"])
        out.append({"doc_id": str(i), "query": f"Q: {r['question']}\nA:", "choices": choices,
                    "gold": list(r["mc1_targets"].values()).index(1)})
    return out


LOADERS = {
    "arc_easy": lambda: _arc("ARC-Easy"), "arc_challenge": lambda: _arc("ARC-Challenge"), "hellaswag": _hellaswag,
    "piqa": _piqa, "winogrande": _winogrande, "openbookqa": _openbookqa, "boolq": _boolq,
    "mmlu": lambda: _mmlu(False), "mmlu_letters": lambda: _mmlu(True), "truthfulqa_mc1": _truthfulqa_mc1,
}
# What lm-eval's own task definition of the same name differs in, for the reproduction table and the README.
NOTES = {"mmlu": "cloze form (lighteval's mmlu_cloze_prompt), not lm-eval's lettered mmlu",
         "hellaswag": "the 1,000-record validation sample, not all 10,042", "truthfulqa_mc1":
         "zero-shot, without lm-eval's 6-shot QA primer"}


def local_tasks() -> list[str]:
    return sorted(LOADERS)


@lru_cache(maxsize=None)
def _load(name: str) -> tuple[dict[str, Any], ...]:
    return tuple(LOADERS[name]())


def load_mc(name: str) -> list[dict[str, Any]]:
    """The documents of a shipped task (fresh copies), in file order."""
    if name not in LOADERS:
        raise DataError(f"no local multiple-choice task {name!r}; shipped: {', '.join(local_tasks())}")
    return [dict(d) for d in _load(name)]
