"""TransE/TransH/TransD learn a toy KB, reload from their artifact, and score all entities right."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kira.kb.embeddings import KGEmbedder
from kira.kb.evaluate import evaluate_embedder
from kira.kb.kge_models import MODEL_CLASSES
from kira.kb.kge_train import corrupt
from kira.schema import KBEmbedder, Triple


def toy_kb() -> tuple[list[Triple], list[Triple]]:
    """30 people in 3 cities; friends live in the same city; 6 people's city is held out."""
    rng = np.random.default_rng(0)
    train, test = [], []
    for p in range(30):
        city = p % 3
        mates = [q for q in range(30) if q % 3 == city and q != p]
        for q in rng.choice(mates, 4, replace=False):
            train.append(Triple("toy", f"p{p}", "friend_of", f"p{q}"))
        t = Triple("toy", f"p{p}", "lives_in", f"city{city}", "test" if p < 6 else "train")
        (test if p < 6 else train).append(t)
    return train, test


@pytest.mark.parametrize("model", ["transe", "transh", "transd"])
def test_ranks_held_out_triples_above_corrupted(model):
    train, test = toy_kb()
    emb = KGEmbedder(model, dim=16, epochs=60, batch_size=64, lr=0.02, device="cpu", threads=1)
    rep = emb.fit(train)
    assert rep["losses"][-1] < rep["losses"][0]
    heads = [t.head for t in test]
    true = emb.score(np.array(heads), np.array(["lives_in"] * 6), np.array([t.tail for t in test]))
    wrong = [f"city{(int(t.tail[-1]) + k) % 3}" for t in test for k in (1, 2)]
    corrupted = emb.score(np.repeat(heads, 2), np.array(["lives_in"] * 12), np.array(wrong)).reshape(6, 2)
    assert (true[:, None] > corrupted).mean() >= 0.9
    assert isinstance(emb, KBEmbedder)


def test_artifact_roundtrip_and_rank_tails(tmp_path):
    train, test = toy_kb()
    emb = KGEmbedder("transe", dim=16, epochs=60, batch_size=64, lr=0.02, device="cpu", threads=1)
    emb.fit(train)
    res = evaluate_embedder(emb, test, train + test)
    assert res.sides["tail"]["hits_at_3"] >= 0.8  # the right city among the top 3 of 33 entities
    emb.save(tmp_path / "toy-transe")
    back = KGEmbedder.load(tmp_path / "toy-transe", device="cpu")
    h, r, t = np.array(["p0", "p1"]), np.array(["lives_in"] * 2), np.array(["city0", "city1"])
    np.testing.assert_allclose(back.score(h, r, t), emb.score(h, r, t), rtol=1e-6)
    top = back.rank_tails("p3", "lives_in", k=5)
    assert len(top) == 5 and top[0][1] >= top[-1][1]
    assert evaluate_embedder(back, test, train + test).mrr == pytest.approx(res.mrr)


@pytest.mark.parametrize("model", ["transe", "transh", "transd"])
@pytest.mark.parametrize("p", [1, 2])
def test_all_entity_scores_match_pointwise(model, p):
    m = MODEL_CLASSES[model](7, 3, 8, p_norm=p, seed=1)
    h, r = torch.tensor([0, 3, 6]), torch.tensor([2, 0, 1])
    all_t = m.score_t(h, r)
    all_h = m.score_h(r, h)
    for e in range(7):
        et = torch.full((3,), e)
        torch.testing.assert_close(all_t[:, e], m.score_hrt(h, r, et), atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(all_h[:, e], m.score_hrt(et, r, h), atol=1e-4, rtol=1e-4)


def test_corruption_changes_exactly_one_side():
    pos = torch.tensor([[1, 0, 2]] * 100)
    neg = corrupt(pos, 2, 5, torch.Generator().manual_seed(0))
    assert neg.shape == (200, 3)
    head_changed = neg[:, 0] != 1
    tail_changed = neg[:, 2] != 2
    assert bool((head_changed ^ tail_changed).all()) and int(head_changed.sum()) == 100
