"""Generation and reference log-likelihood on the tiny model."""

from __future__ import annotations

import torch

from ftguard.generation import fit_messages, generate, reference_loglik, render_prompt


def test_loglik_matches_unbatched_computation(tiny_lm) -> None:  # noqa: ANN001
    model, tok = tiny_lm
    prompts = [[{"role": "user", "content": "Who wrote Hamlet?"}],
               [{"role": "user", "content": "What is the capital of a country with a long name?"}],
               [{"role": "user", "content": "Name a colour."}]]
    refs = ["Shakespeare", "The capital is a city with a very long name indeed.", "Blue, or any other one."]
    got = reference_loglik(model, tok, prompts, refs, batch_size=2)
    for p, r, g in zip(prompts, refs, got, strict=True):
        pi = render_prompt(tok, p, 1024)
        ri = tok(r + tok.eos_token, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([pi + ri])
        with torch.no_grad():
            lp = torch.log_softmax(model(ids).logits[0, :-1], -1)
        want = float(lp[len(pi) - 1:].gather(-1, ids[0, len(pi):, None]).mean())
        assert abs(g - want) < 1e-4


def test_generate_keeps_input_order_and_is_deterministic(tiny_lm) -> None:  # noqa: ANN001
    model, tok = tiny_lm
    prompts = [[{"role": "user", "content": "hello " * n}] for n in (1, 9, 3, 5)]
    a = generate(model, tok, prompts, max_new_tokens=6, batch_size=4)
    b = generate(model, tok, prompts[::-1], max_new_tokens=6, batch_size=1)
    assert a == generate(model, tok, prompts, max_new_tokens=6, batch_size=4)
    assert sum(x == y for x, y in zip(a, b[::-1], strict=True)) >= 3


def test_fit_messages_keeps_system_and_last_turn(tiny_lm) -> None:  # noqa: ANN001
    _, tok = tiny_lm
    msgs = [{"role": "system", "content": "You book hotels."}]
    for i in range(20):
        msgs += [{"role": "user", "content": f"question {i} " * 10}, {"role": "assistant", "content": f"answer {i} " * 10}]
    msgs.append({"role": "user", "content": "the last question"})
    fitted = fit_messages(tok, msgs, 200)
    assert fitted[0] == msgs[0] and fitted[-1] == msgs[-1]
    assert [m["role"] for m in fitted[1:]] == ["user", "assistant"] * ((len(fitted) - 2) // 2) + ["user"]
    assert len(render_prompt(tok, msgs, 200)) <= 200 < len(render_prompt(tok, msgs, 10_000))


def test_length_batches_pad_no_prompt_to_more_than_twice_its_length() -> None:
    from ftguard.generation import length_batches

    lengths = [250, 240, 40, 38, 36, 30, 20, 19, 18, 10]
    batches = length_batches(list(range(10)), lengths, batch_size=3)
    assert batches == [[0, 1], [2, 3, 4], [5, 6, 7], [8, 9]]
    assert all(lengths[i] * 2 >= lengths[b[0]] for b in batches for i in b)
    assert sorted(i for b in batches for i in b) == list(range(10))


def test_generation_is_the_same_whatever_the_batching(tiny_lm) -> None:  # noqa: ANN001
    model, tok = tiny_lm
    prompts = [[{"role": "user", "content": "word " * k}] for k in (1, 40, 2, 35, 3)]
    one_by_one = [generate(model, tok, [p], max_new_tokens=6)[0] for p in prompts]
    assert generate(model, tok, prompts, max_new_tokens=6, batch_size=30) == one_by_one
