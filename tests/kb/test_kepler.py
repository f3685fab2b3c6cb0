"""KEPLER (tiny-bert): joint KE + MLM training, embedding an entity never seen in training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kira.kb.embeddings import load_embedder
from kira.kb.evaluate import evaluate_embedder
from kira.kb.kepler import Kepler
from kira.schema import Entity, KBEmbedder, Triple

CITIES = ["paris", "berlin", "rome"]


def toy():
    ents = [Entity(c, "t", c.title(), f"a city called {c}") for c in CITIES]
    train, test = [], []
    for i in range(24):
        c = CITIES[i % 3]
        ents.append(Entity(f"p{i}", "t", f"person {i}", f"a person who lives in {c}"))
        (test if i >= 21 else train).append(Triple("t", f"p{i}", "lives_in", c, "test" if i >= 21 else "train"))
    return ents, train, test


@pytest.fixture(scope="module")
def trained():
    ents, train, test = toy()
    unseen = {t.head for t in test}
    k = Kepler("tiny-bert", epochs=12, batch_size=16, lr=1e-2, num_negs=4, max_length=16, device="cpu")
    rep = k.fit(train, entities=[e for e in ents if e.id not in unseen])
    return k, rep, ents, train, test


def test_joint_losses_fall(trained):
    _, rep, *_ = trained
    ke, mlm = rep["ke_losses"], rep["mlm_losses"]
    assert np.mean(ke[-4:]) < np.mean(ke[:4]) and np.mean(mlm[-4:]) < np.mean(mlm[:4])


def test_embeds_unseen_entity_and_links_it(trained, tmp_path):
    k, _, ents, train, test = trained
    assert "p22" not in k.vocab.e2i  # never seen in training
    k.set_entities(ents)  # the unseen people are embedded from their descriptions
    assert "p22" in k.vocab.e2i and torch.isfinite(k._table).all()
    assert isinstance(k, KBEmbedder)
    top = k.rank_tails("p22", "lives_in", k=len(ents))
    assert {e for e, _ in top} >= set(CITIES)
    res = evaluate_embedder(k, test, train + test)
    assert res.n == 3 and 0 < res.mrr <= 1
    # the artifact reloads through the generic loader and scores identically
    k.save(tmp_path / "t-kepler")
    back = load_embedder(tmp_path / "t-kepler", device="cpu")
    h, r, t = np.array(["p22"]), np.array(["lives_in"]), np.array(["rome"])
    np.testing.assert_allclose(back.score(h, r, t), k.score(h, r, t), atol=1e-4)
