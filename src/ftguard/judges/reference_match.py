"""Offline knowledge judge: does the answer agree with the human reference answer (Dolly open_qa / closed_qa)?

Normalisation: lowercase, accents folded, punctuation and articles dropped, number words read as numbers
("twenty-two" -> 22, "1,000" -> 1000), a light stemmer ("rivers" -> "river"). *Key words* are the
reference's content words that are not already in the question (restating the question earns nothing).

Rules, in order:
1. The answer is cut at a fake next turn ("User: ...", judges/_reply.py). No reference -> Verdict(nan, "error");
   empty answer -> wrong.
2. Yes/no references ("No", "Yes, because ..."): the answer's first yes/no word must have the same polarity.
3. Short references (<= `short_max_words` words, e.g. "Vermeer", "31 August 2000"): every key word must be
   present (a near spelling counts: "Scottie" for "Scotty"; a multi-word proper name is matched by its last
   word: "Beethoven" for "Ludwig van Beethoven") and every number of the reference must appear in the answer,
   so "August 31, 2000" matches "31 August 2000" and "August 30, 2000" does not.
4. Longer references: correct when the weighted recall of key words (numbers and capitalised names weigh 2)
   reaches `min_recall`, or the token F1 with the reference (question words left out) reaches `min_f1`;
   and, when the question asks for
   a quantity or a date ("how many", "when", "what year"), at least one reference number must appear.
5. Short answers to long references ("Chris Minns" for a paragraph about the premier): also correct when the
   answer's own content words (not in the question; names and numbers weigh 2) are found in the reference
   with weighted precision >= `min_precision`, every name and number the answer adds is among them, and rule
   4's number condition holds. What the answer says must be supported; it need not say everything.
The explanation gives recall, F1, and the matched / missing key words and numbers.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence

from ftguard.errors import ConfigError
from ftguard.judges._reply import cut_at_next_turn
from ftguard.judges.base import Judge, Verdict
from ftguard.registry import JUDGES

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve thirteen "
                                     "fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if i > 1}
_STOP = set("a an the and or but if of to in on at for with by from as is are was were be been being it its this that "
            "these those they them their there i you we he she his her our your my me us do does did can will would "
            "should could have has had about into than then also which who whom what when where why how very just "
            "so such not no yes any some all most more many much one's s van von de der da del la le".split())
_NUMERIC_Q = re.compile(r"\b(?:when|what year|which year|how many|how much|how old|how long|how far|how tall|"
                        r"how big|what date|what age|population|what percentage|what time)\b", re.IGNORECASE)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text)  # 1,000 -> 1000
    return re.sub(r"\b(\d+)(?:st|nd|rd|th)\b", r"\1", text)  # 31st -> 31


def _stem(word: str) -> str:
    for suffix in ("ies", "es", "s", "ing", "ed"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def tokens(text: str) -> list[str]:
    """Normalised tokens: lowercase, no punctuation or articles, number words as digits, stemmed."""
    words = re.findall(r"\d+(?:\.\d+)?|[a-z]+", _fold(text).lower().replace("-", " "))
    out: list[str] = []
    for w in words:
        if w in _UNITS or w in _TENS:
            value = _UNITS.get(w, _TENS.get(w, 0))
            if out and w in _UNITS and out[-1].isdigit() and int(out[-1]) in _TENS.values() and value < 10:
                out[-1] = str(int(out[-1]) + value)  # twenty two -> 22
                continue
            out.append(str(value))
        elif w not in ("a", "an", "the"):
            out.append(_stem(w))
    return out


def _numbers(toks: Sequence[str]) -> set[str]:
    return {t for t in toks if re.fullmatch(r"\d+(?:\.\d+)?", t)}


def _present(word: str, pool: set[str]) -> bool:
    return word in pool or (len(word) >= 5 and any(difflib.SequenceMatcher(None, word, p).ratio() >= 0.85
                                                   for p in pool if len(p) >= 5 and abs(len(p) - len(word)) <= 2))


def token_f1(reference: str, response: str, question: str = "") -> float:
    """SQuAD-style token F1, over the tokens that are not in the question (echoing the question scores 0)."""
    q = set(tokens(question))
    ref = Counter(t for t in tokens(reference) if t not in q)
    resp = Counter(t for t in tokens(response) if t not in q)
    common = sum((ref & resp).values())
    if common == 0:
        return 0.0
    p, r = common / sum(resp.values()), common / sum(ref.values())
    return 2 * p * r / (p + r)


def _key_words(reference: str, question: str) -> dict[str, float]:
    """Reference content words not in the question, weighted 2 for numbers and capitalised names."""
    q = set(tokens(question))
    weights: dict[str, float] = {}
    for i, raw in enumerate(re.findall(r"[A-Za-z]+|\d+(?:\.\d+)?", _fold(reference).replace("-", " "))):
        for tok in tokens(raw):
            if tok in _STOP or tok in q or len(tok) < 2 and not tok.isdigit():
                continue
            strong = tok.isdigit() or (raw[0].isupper() and i > 0)
            weights[tok] = max(weights.get(tok, 0.0), 2.0 if strong else 1.0)
    return weights


def _polarity(text: str) -> str | None:
    m = re.search(r"\b(yes|no|yeah|nope|correct|incorrect)\b", _fold(text).lower()[:80])
    return None if not m else ("yes" if m.group(1) in ("yes", "yeah", "correct") else "no")


def answer_precision(response: str, reference: str, question: str = "") -> tuple[float, bool]:
    """(weighted share of the answer's content words found in the reference, every name/number found).

    Content words: not stop words, not in the question; numbers and capitalised names weigh 2."""
    words, pool = _key_words(response, question), set(tokens(reference))  # the same content-word weighting
    if not words:
        return 0.0, False
    found = {w for w in words if _present(w, pool)}
    return sum(words[w] for w in found) / sum(words.values()), all(w in found for w, v in words.items() if v > 1)


def lexical_scores(response: str, reference: str, question: str = "") -> tuple[dict[str, float], set[str], float, float]:
    """(key words of the reference with weights, those present in the response, weighted recall, token F1)."""
    pool = set(tokens(response))
    keys = _key_words(reference, question) or {t: 1.0 for t in tokens(reference) if t not in _STOP}
    hit = {k for k in keys if _present(k, pool)}
    recall = sum(keys[k] for k in hit) / sum(keys.values()) if keys else 0.0
    return keys, hit, recall, token_f1(reference, response, question)


def match(response: str, reference: str | None, question: str = "", min_recall: float = 0.4, min_f1: float = 0.5,
          short_max_words: int = 4, min_precision: float = 0.7) -> Verdict:
    """Judge one answer against its reference; see the module docstring."""
    response = cut_at_next_turn(response)  # the answer, not a fake next turn the model went on to write
    if not reference or not reference.strip():
        return Verdict(math.nan, "error", "no reference answer on the item")
    if not (response or "").strip():
        return Verdict(0.0, "wrong", "empty response")
    resp_toks = tokens(response)
    pool, resp_nums = set(resp_toks), _numbers(resp_toks)
    ref_nums = _numbers(tokens(reference))
    keys, hit, recall, f1 = lexical_scores(response, reference, question)
    expl = (f"recall={recall:.2f} f1={f1:.2f} matched={sorted(hit)} missing={sorted(set(keys) - hit)} "
            f"ref_numbers={sorted(ref_nums)} response_numbers={sorted(resp_nums)[:10]}")
    ref_pol = _polarity(reference) if re.match(r"\W*(yes|no)\b", reference.lower()) else None
    if ref_pol is not None:
        ok_pol = _polarity(response) == ref_pol
        if not ok_pol or not keys:
            return Verdict(float(ok_pol), "correct" if ok_pol else "wrong", f"polarity ref={ref_pol} "
                           f"response={_polarity(response)} {expl}")
    if len(reference.split()) <= short_max_words:
        names = [w for w in re.findall(r"[A-Za-z]+", _fold(reference)) if w[0].isupper()]
        surname = bool(names) and len(names) == len(keys) and _present(tokens(names[-1])[0], pool)
        ok = (hit == set(keys) or surname) and ref_nums <= resp_nums
        return Verdict(float(ok), "correct" if ok else "wrong", f"short reference; {expl}")
    numbers_ok = not (ref_nums and _NUMERIC_Q.search(question)) or bool(ref_nums & resp_nums)
    precision, names_found = answer_precision(response, reference, question)
    supported = min_precision <= 1.0 and precision >= min_precision and names_found
    ok = (recall >= min_recall or f1 >= min_f1 or supported) and numbers_ok
    expl += f" precision={precision:.2f}{'' if names_found else ' (a name/number not in the reference)'}"
    return Verdict(float(ok), "correct" if ok else "wrong", expl + ("" if numbers_ok else " (no reference number)"))


@JUDGES.register("reference_match")
def reference_match(min_recall: float = 0.4, min_f1: float = 0.5, short_max_words: int = 4,
                    min_precision: float = 0.7) -> Judge:
    """Lexical agreement with the human reference answer (offline, deterministic).

    Args:
        min_recall: Weighted share of the reference's key words the answer must contain (long references).
        min_f1: Token F1 with the reference that also counts as agreement (long references).
        short_max_words: References with at most this many words need all their key words and numbers.
        min_precision: Weighted share of the answer's own content words found in a long reference that also
            counts as agreement (rule 5; chosen on assets/calibration/train, not on the calibration set);
            above 1 turns rule 5 off.
    """
    for name, value in (("min_recall", min_recall), ("min_f1", min_f1)):
        if not 0.0 < value <= 1.0:
            raise ConfigError(f"reference_match: {name} must be in (0, 1], got {value}")

    def judge(items: Sequence, responses: Sequence[str]) -> list[Verdict]:
        return [match(r, it.reference, it.meta.get("question", ""), min_recall, min_f1, short_max_words,
                      min_precision) for it, r in zip(items, responses, strict=True)]

    return Judge("reference_match", "3", judge, labels={"correct": 1.0, "wrong": 0.0}, needs_reference=True)
