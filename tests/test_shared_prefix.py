"""SharedPrefixLM (probes/_shared_prefix.py) gives lm-eval's HFLM log-likelihoods, running shared prefixes once."""

from __future__ import annotations

import pytest

from ftguard.probes._shared_prefix import common_prefix, group_requests
from ftguard.registry import PROBES


def _requests(lm, pairs):
    return [((c, k), *lm._encode_pair(c, k)) for c, k in pairs]


PAIRS = [  # two four-choice questions after a shared system turn, a WinoGrande-like pair (contexts differ at the
    # blank), a one-token context, a question whose choices start with the same token, and a repeated request
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
     "4"),
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
     "five"),
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
     "a fish"),
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
     "a number, four"),
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n",
     " red"),
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nName a colour.<|im_end|>\n<|im_start|>assistant\n",
     " the sky at night"),
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nThe trophy did not fit in the suitcase",
     " because it was too big."),
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nThe trophy did not fit in the bag",
     " because it was too big."),
    ("a", " b c"),
    ("<|im_start|>system\nYou help.<|im_end|>\n<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
     "4"),
]


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_shared_prefix_log_likelihoods_equal_hflm(tiny_lm, batch_size) -> None:
    from lm_eval.models.huggingface import HFLM

    from ftguard.probes._shared_prefix import SharedPrefixLM

    model, tok = tiny_lm
    plain = HFLM(pretrained=model, tokenizer=tok, batch_size=batch_size, device="cpu")
    shared = SharedPrefixLM(pretrained=model, tokenizer=tok, batch_size=batch_size, device="cpu")
    reqs = _requests(plain, PAIRS)
    assert _requests(shared, PAIRS) == reqs  # the same tokens
    want = plain._loglikelihood_tokens(reqs, disable_tqdm=True)
    got = shared._loglikelihood_tokens(reqs, disable_tqdm=True)
    assert len(got) == len(want)
    for (lp, greedy), (lp0, greedy0) in zip(got, want, strict=True):
        assert lp == pytest.approx(lp0, abs=1e-4) and greedy == greedy0
    assert len({round(lp, 3) for lp, _ in want}) > 5  # the requests really differ


def test_grouping_keeps_a_documents_choices_together_and_caps_the_prefix() -> None:
    ctx_a, ctx_b = [1, 2, 3, 4, 5], [1, 2, 3, 9]
    seqs = [ctx_a + [7], ctx_a + [8, 8], ctx_b + [7], ctx_b + [6], ctx_a + [7, 7]]
    limits = [len(ctx_a) - 1, len(ctx_a) - 1, len(ctx_b) - 1, len(ctx_b) - 1, len(ctx_a) - 1]
    order = sorted(range(len(seqs)), key=lambda i: seqs[i])
    floor = common_prefix(seqs[order[0]], seqs[order[-1]])
    groups = group_requests(seqs, limits, order, floor, max_size=16)
    assert sorted(sorted(g) for g, _ in groups) == [[0, 1, 4], [2, 3]]
    assert {tuple(sorted(g)): p for g, p in groups} == {(0, 1, 4): 4, (2, 3): 3}  # before each last context token
    assert [len(g) for g, _ in group_requests(seqs, limits, order, floor, max_size=2)] == [2, 2, 1]


def test_lm_eval_probe_scores_the_same_with_and_without_shared_prefixes(tiny_lm) -> None:
    from ftguard.probes.lm_eval import score_items

    model, tok = tiny_lm
    probe = PROBES.create("lm_eval", tasks=["arc_easy", "piqa", "winogrande", "hellaswag"], n_per_task=4)
    shared = score_items(model, tok, probe.items, "acc_norm", True, 16, False, share_prefix=True)
    plain = score_items(model, tok, probe.items, "acc_norm", True, 16, False, share_prefix=False)
    assert [s for s, _, _ in shared] == [s for s, _, _ in plain]
    lls = [[float(x) for x in e.split("log-likelihoods [")[1].rstrip("]").split(", ")] for _, _, e in shared]
    lls0 = [[float(x) for x in e.split("log-likelihoods [")[1].rstrip("]").split(", ")] for _, _, e in plain]
    assert all(a == pytest.approx(b, abs=2e-3) for a, b in zip(lls, lls0, strict=True))
