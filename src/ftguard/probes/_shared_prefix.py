"""lm-eval's HFLM, scoring the choices of a document on one shared prefix.

HFLM runs every (context, choice) request through the whole model: a four-choice question pays for its context
four times, and every question pays again for the chat template's system prompt. `SharedPrefixLM` keeps HFLM's
tokenisation (its `_encode_pair`, so the tokens are the same) and changes only how they are run:

1. the prefix common to every request (the chat template's system turn) runs once;
2. requests are sorted by their tokens, so the choices of one document sit together; each run of requests that
   share a longer prefix (a document's context, or WinoGrande's sentence up to the blank) is a group, and the
   groups' prefixes run once each, batched (right-padded) on copies of the key/value cache of step 1;
3. the rest of each request (its last context token and its continuation) runs batched on its group's row of
   that cache, the prefix padding masked out; only these positions go through the LM head.

Log-likelihoods agree with HFLM's to float rounding (tests/test_shared_prefix.py) and choices are ranked the
same. Requests longer than the model's window, and non-causal models, go through HFLM's own loop.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from lm_eval.models.huggingface import HFLM
from tqdm.auto import tqdm

Request = tuple[tuple[str, str], list[int], list[int]]


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def group_requests(seqs: list[list[int]], limits: list[int], order: list[int], floor: int,
                   max_size: int) -> list[tuple[list[int], int]]:
    """Runs of `order` (indices sorted by their tokens), each with the length of the prefix it can cache: the
    common prefix of its requests, at most each one's `limit` (the tokens before its last context token) and at
    least `floor` (the prefix every request shares). A run ends where the next request would shorten its prefix,
    or at `max_size`; correctness does not depend on the grouping, only speed does."""
    groups: list[tuple[list[int], int]] = []
    members: list[int] = []
    shared = 0
    for i in order:
        if members:
            with_i = min(common_prefix(seqs[members[0]], seqs[i]), limits[i], shared)
            if len(members) < max_size and with_i >= floor and (len(members) == 1 or with_i >= shared):
                members.append(i)
                shared = with_i
                continue
            groups.append((members, shared))
        members, shared = [i], limits[i]
    if members:
        groups.append((members, shared))
    return groups


class SharedPrefixLM(HFLM):
    """HFLM whose log-likelihood requests reuse the key/value cache of shared prefixes (module docstring)."""

    def _loglikelihood_tokens(self, requests: list[Request], disable_tqdm: bool = False,
                              override_bs: int | None = None) -> list[tuple[float, bool]]:
        if self.backend != "causal" or not requests:
            return super()._loglikelihood_tokens(requests, disable_tqdm=disable_tqdm, override_bs=override_bs)
        seqs = [ctx + cont for _, ctx, cont in requests]
        long = [i for i, s in enumerate(seqs) if len(s) > self.max_length + 1]
        mine = sorted(set(range(len(requests))) - set(long))
        out: list[tuple[float, bool] | None] = [None] * len(requests)
        if long:
            for i, r in zip(long, super()._loglikelihood_tokens([requests[i] for i in long], disable_tqdm=True),
                            strict=True):
                out[i] = r
        if mine:
            limits = [len(ctx) - 1 for _, ctx, _ in requests]  # the last context token predicts the first choice token
            order = sorted(mine, key=lambda i: seqs[i])
            first, last = seqs[order[0]], seqs[order[-1]]  # sorted: their common prefix is everyone's
            floor = min(common_prefix(first, last), *(limits[i] for i in mine))
            size = self.batch_size if isinstance(self.batch_size, int) and self.batch_size > 0 else 16
            groups = group_requests(seqs, limits, order, floor, size)
            groups.sort(key=lambda g: (max(len(seqs[i]) for i in g[0]) - g[1], g[1]))  # similar rests pad little
            bar = tqdm(total=len(mine), desc="log-likelihood (shared prefixes)", disable=disable_tqdm, leave=False)
            with torch.inference_mode():
                base = self.model(input_ids=torch.tensor([first[:floor]], device=self.device), use_cache=True,
                                  logits_to_keep=1).past_key_values if floor else None
                for chunk in _chunks(groups, size):
                    for i, r in zip([i for g, _ in chunk for i in g],
                                    self._score_chunk(requests, seqs, chunk, floor, base), strict=True):
                        out[i] = r
                    bar.update(sum(len(g) for g, _ in chunk))
            bar.close()
        return out  # type: ignore[return-value]

    def _score_chunk(self, requests: list[Request], seqs: list[list[int]], chunk: list[tuple[list[int], int]],
                     floor: int, base: Any) -> list[tuple[float, bool]]:
        """Score the requests of `chunk` (groups of requests, each with its shared prefix length) in two passes:
        each group's prefix after `floor`, right-padded, on copies of `base`; then each request's rest on its
        group's row of that cache, with the prefix padding masked out. Positions are passed explicitly, so padding
        moves no token; a real token never attends to padding (causal order, and the mask)."""
        dev = self.device
        cache = copy.deepcopy(base) if base is not None else None
        heads = [seqs[g[0]][floor:shared] for g, shared in chunk]
        width_p = max(len(h) for h in heads)
        if width_p:
            ids = torch.zeros((len(chunk), width_p), dtype=torch.long)
            for row, h in enumerate(heads):
                ids[row, :len(h)] = torch.tensor(h, dtype=torch.long)
            if cache is not None:
                cache.batch_repeat_interleave(len(chunk))
            pos = torch.arange(floor, floor + width_p)[None].expand(len(chunk), -1)
            cache = self.model(input_ids=ids.to(dev), position_ids=pos.to(dev), past_key_values=cache,
                               use_cache=True, logits_to_keep=1).past_key_values
        members = [(row, i) for row, (g, _) in enumerate(chunk) for i in g]
        rests = [seqs[i][chunk[row][1]:-1] for row, i in members]
        width = max(len(r) for r in rests)
        ids = torch.zeros((len(members), width), dtype=torch.long)
        mask = torch.ones((len(members), floor + width_p + width), dtype=torch.long)
        pos = torch.empty((len(members), width), dtype=torch.long)
        for k, ((row, _), r) in enumerate(zip(members, rests, strict=True)):
            ids[k, :len(r)] = torch.tensor(r, dtype=torch.long)
            mask[k, floor + len(heads[row]):floor + width_p] = 0  # the padding after this group's prefix
            pos[k] = torch.arange(floor + len(heads[row]), floor + len(heads[row]) + width)
        if cache is not None:
            cache.batch_select_indices(torch.tensor([row for row, _ in members], device=dev))
        logits = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), position_ids=pos.to(dev),
                            past_key_values=cache, use_cache=cache is not None).logits
        results = []
        for k, (row, i) in enumerate(members):
            _, ctx, cont = requests[i]
            start = len(ctx) - 1 - chunk[row][1]  # the position whose logits predict the first continuation token
            logp = F.log_softmax(logits[k, start:start + len(cont)].float(), dim=-1)
            target = torch.tensor(cont, dtype=torch.long, device=logp.device)
            results.append((float(logp.gather(1, target[:, None]).sum()), bool((logp.argmax(-1) == target).all())))
        return results


def _chunks(groups: list[tuple[list[int], int]], size: int) -> list[list[tuple[list[int], int]]]:
    """Consecutive groups with at most `size` requests in all (a larger group goes alone)."""
    chunks: list[list[tuple[list[int], int]]] = []
    n = 0
    for g in groups:
        if chunks and n + len(g[0]) <= size:
            chunks[-1].append(g)
            n += len(g[0])
        else:
            chunks.append([g])
            n = len(g[0])
    return chunks
