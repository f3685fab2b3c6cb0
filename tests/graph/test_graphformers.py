import numpy as np
import torch

from kira.graph.graphformers import (
    GraphFormers,
    GraphFormersConfig,
    GraphFormersLinkPredictor,
    sample_neighbours,
)
from kira.graph.view import GraphView
from kira.schema import Triple


def test_layer_shapes_and_masking():
    torch.manual_seed(0)
    m = GraphFormers(GraphFormersConfig(base="tiny-bert")).eval()
    sets = [["paris: capital of france", "france: a country"], ["berlin: capital of germany"]]
    a = m.tokenize(sets)
    assert a["input_ids"].shape[:2] == (2, 2) and a["node_mask"].tolist() == [[True, True], [True, False]]
    with torch.no_grad():
        out = m(**a)
        assert out.shape == (2, 2, m.dim)
        # a third, longer node set adds padding tokens to every node and a padding node to none
        b = m.tokenize(sets + [["a much longer text about many other things here", "x", "y"]])
        out_b = m(**b)
    assert b["input_ids"].shape[1:] != a["input_ids"].shape[1:]
    assert torch.allclose(out[0], out_b[0, :2], atol=1e-5)  # padding tokens/nodes do not leak
    assert torch.allclose(out[1, 0], out_b[1, 0], atol=1e-5)
    with torch.no_grad():  # neighbours do shape the centre: the graph step is live
        solo = m(**m.tokenize([[sets[0][0]]]))
    assert (solo[0, 0] - out[0, 0]).abs().max() > 1e-6


def test_link_prediction_training_and_artifact(tmp_path):
    ents = [(f"e{i}", f"node {i}", f"item number {i}") for i in range(12)]
    tr = [(f"e{i}", "next", f"e{(i + 1) % 12}") for i in range(12)]
    v = GraphView.from_records("ring", ents, tr)
    assert sample_neighbours(v, 0, 5, exclude=[1]) == [11]
    p = GraphFormersLinkPredictor.create(v, base="tiny-bert", device="cpu", max_length=12, neighbours=2)
    rep = p.fit([Triple("ring", h, r, t) for h, r, t in tr], steps=4, batch_size=6, lr=1e-3)
    assert rep["steps"] == 4
    top = p.rank_tails("e0", "next", k=3)
    assert len(top) == 3
    p.model.save(tmp_path / "gf")
    m2, meta = GraphFormers.load(tmp_path / "gf", device="cpu")
    assert meta["type"] == "graphformers"
    p2 = GraphFormersLinkPredictor(v, m2)
    assert p2.rank_tails("e0", "next", k=3) == top
    local = GraphFormersLinkPredictor(v, m2).score(["e0", "e5"], ["next", "next"], ["e1", "e1"])  # only 3 nodes embedded
    assert np.allclose(local, p2.score(["e0", "e5"], ["next", "next"], ["e1", "e1"]), atol=1e-4)
