import networkx as nx
import numpy as np
import torch

from kira.graph import graph_bert as gb
from kira.graph import graph_bert_predictor as gbp
from kira.graph import graph_bert_train as gbt
from kira.graph.view import GraphView
from kira.schema import Triple


def karate() -> tuple[GraphView, np.ndarray]:
    g = nx.karate_club_graph()
    v = GraphView.from_records("karate", [(str(i), f"member {i}", "") for i in g.nodes],
                               [(str(a), "knows", str(b)) for a, b in g.edges])
    labels = np.asarray([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in g.nodes])
    return v, labels


def test_inputs_and_forward_shapes():
    v, _ = karate()
    inp = gb.prepare_inputs(v, k=5)
    assert inp.context.shape == (34, 6) and (inp.context[:, 0] == np.arange(34)).all()
    assert (inp.hops[:, 0] == 0).all() and (inp.hops[:, 1:] >= 1).all()
    # node 0's context is its top-PPR nodes; they are all neighbours or 2 hops away
    assert set(inp.hops[0, 1:].tolist()) <= {1, 2}
    cfg = gb.GraphBertConfig(n_nodes=34, k=5, hidden=16, heads=2, ffn=32, n_classes=2, n_relations=1)
    m = gb.GraphBert(cfg).attach(inp)
    out, z, valid = m(torch.tensor([0, 5, 33]))
    assert out.shape == (3, 6, 16) and z.shape == (3, 16) and valid.all()
    feats = np.random.default_rng(0).normal(size=(34, 12)).astype(np.float32)
    m2 = gb.GraphBert(gb.GraphBertConfig(n_nodes=34, k=5, hidden=16, feature_dim=12)).attach(
        gb.prepare_inputs(v, k=5, features=feats))
    assert m2(torch.tensor([1, 2]))[1].shape == (2, 16)
    assert m2.reconstruction_loss(torch.tensor([1, 2])).ndim == 0


def test_padding_context_is_ignored():
    v = GraphView.from_records("x", [("a", "a", ""), ("b", "b", ""), ("c", "c", "")], [("a", "r", "b")])
    m = gb.GraphBert(gb.GraphBertConfig(n_nodes=3, k=4, hidden=8, heads=2, ffn=16)).attach(gb.prepare_inputs(v, k=4))
    m.eval()
    _, z, valid = m(torch.tensor([2]))
    assert valid[0].tolist() == [True, False, False, False, False]
    assert torch.isfinite(z).all()


def test_pretrain_and_classification_on_karate(tmp_path):
    v, labels = karate()
    torch.manual_seed(0)
    cfg = gb.GraphBertConfig(n_nodes=34, k=4, hidden=16, heads=2, ffn=32, n_classes=2, dropout=0.0)
    m = gb.GraphBert(cfg).attach(gb.prepare_inputs(v, k=5))
    losses = gbt.pretrain(m, v, steps=16, batch_size=12, lr=5e-3)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    train = np.arange(0, 34, 2)
    cl = gbt.train_node_classification(m, train, labels[train], steps=12, batch_size=17, lr=5e-3)
    assert cl[-1] < cl[0]
    gbp.save(m, tmp_path / "gb", node_ids=v.node_ids)
    m2, meta = gbp.load(tmp_path / "gb", device="cpu")
    assert meta["node_ids"] == v.node_ids
    assert (gbt.predict_classes(m2, np.arange(34)) == gbt.predict_classes(m, np.arange(34))).all()


def test_link_predictor_protocol():
    v, _ = karate()
    p = gbp.GraphBertLinkPredictor.create(v, k=4, hidden=16, heads=2, ffn=32, device="cpu")
    trip = [Triple("karate", v.node_ids[h], "knows", v.node_ids[t]) for h, t in zip(v.heads, v.tails, strict=True)]
    rep = p.fit(trip, steps=10, batch_size=32, lr=3e-3)
    assert rep["last_loss"] < rep["first_loss"]
    top = p.rank_tails("0", "knows", k=5)
    assert len(top) == 5 and top[0][1] >= top[-1][1]
    s = p.score(np.array(["0", "0"]), np.array(["knows", "knows"]), np.array(["1", "33"]))
    assert s.shape == (2,)
    st = p.score_tails(torch.tensor([0]), torch.tensor([0]))
    assert st.shape == (1, 34) and np.isclose(float(st[0, 1]), s[0], atol=1e-4)
