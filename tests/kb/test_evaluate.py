"""Filtered, realistic-tie link-prediction metrics against a hand-computed example."""

from __future__ import annotations

import pytest
import torch

from kira.kb.evaluate import evaluate_link_prediction, realistic_ranks

# 4 entities, 1 relation. Tail scores per head, head scores per tail (a fixed lookup scorer).
TAIL = {0: [0.1, 0.9, 0.5, 0.5], 1: [0.3, 0.2, 0.8, 0.1]}
HEAD = {2: [0.4, 0.4, 0.0, 0.4], 3: [0.9, 0.1, 0.2, 0.3]}


def score_tails(h, r):
    return torch.tensor([TAIL[int(x)] for x in h])


def score_heads(r, t):
    return torch.tensor([HEAD[int(x)] for x in t])


TEST = torch.tensor([[0, 0, 2], [1, 0, 3]])
KNOWN = torch.tensor([[0, 0, 1], [0, 0, 2], [1, 0, 3]])


def test_filtered_metrics_match_hand_computation():
    # (0,0,2) tail: entity 1 is a known tail of (0,0) → filtered; 2 ties with 3 → ranks 1 and 2 → 1.5
    # (0,0,2) head: 0 ties with 1 and 3 → optimistic 1, pessimistic 3 → 2
    # (1,0,3) tail and head: three better candidates → 4 each
    res = evaluate_link_prediction(score_tails, score_heads, TEST, KNOWN, 4, 1, batch_size=1)
    assert res.mrr == pytest.approx((1 / 1.5 + 1 / 2 + 1 / 4 + 1 / 4) / 4)
    assert res.hits_at_1 == 0.0 and res.hits_at_3 == pytest.approx(0.5) and res.hits_at_10 == 1.0
    assert res.mean_rank == pytest.approx((1.5 + 2 + 4 + 4) / 4)
    assert res.sides["tail"]["mrr"] == pytest.approx((1 / 1.5 + 1 / 4) / 2)
    assert res.sides["head"]["mrr"] == pytest.approx((1 / 2 + 1 / 4) / 2)


def test_unfiltered_keeps_known_competitors():
    res = evaluate_link_prediction(score_tails, score_heads, TEST, KNOWN, 4, 1, filtered=False)
    # (0,0,2) tail now has entity 1 (0.9) above it: optimistic 2, pessimistic 3 → 2.5
    assert res.sides["tail"]["mrr"] == pytest.approx((1 / 2.5 + 1 / 4) / 2)


def test_batched_equals_unbatched_on_random_scores():
    g = torch.Generator().manual_seed(0)
    E, R = 50, 3
    tbl_t = torch.rand(E, R, E, generator=g)
    tbl_h = torch.rand(R, E, E, generator=g)
    known = torch.stack([torch.randint(0, E, (300,), generator=g), torch.randint(0, R, (300,), generator=g),
                         torch.randint(0, E, (300,), generator=g)], 1)
    test = known[:40]
    a = evaluate_link_prediction(lambda h, r: tbl_t[h, r], lambda r, t: tbl_h[r, t], test, known, E, R, batch_size=7)
    b = evaluate_link_prediction(lambda h, r: tbl_t[h, r], lambda r, t: tbl_h[r, t], test, known, E, R, batch_size=1000)
    assert a.mrr == pytest.approx(b.mrr) and a.hits_at_10 == pytest.approx(b.hits_at_10)
    # brute-force reference for the tail side
    ref = []
    kset = {tuple(x) for x in known.tolist()}
    for h, r, t in test.tolist():
        s = tbl_t[h, r].clone()
        for e in range(E):
            if e != t and (h, r, e) in kset:
                s[e] = float("-inf")
        ref.append(float(realistic_ranks(s[None], torch.tensor([t]))[0]))
    assert a.sides["tail"]["mean_rank"] == pytest.approx(sum(ref) / len(ref))


def test_constant_scorer_is_not_perfect():
    res = evaluate_link_prediction(lambda h, r: torch.zeros(len(h), 10), lambda r, t: torch.zeros(len(t), 10),
                                   torch.tensor([[0, 0, 1]]), torch.tensor([[0, 0, 1]]), 10, 1)
    assert res.mean_rank == pytest.approx(5.5)
