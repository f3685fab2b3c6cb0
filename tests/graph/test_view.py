import numpy as np
import pytest

from kira.errors import KiraError
from kira.graph import view as gv
from kira.graph.view import GraphView, load_view, ppr_matrix, wl_colors


def path_graph(n: int) -> GraphView:
    return GraphView.from_records("p", [(str(i), f"n{i}", "") for i in range(n)],
                                  [(str(i), "next", str(i + 1)) for i in range(n - 1)])


def test_ppr_matches_closed_form_and_context_order():
    v = path_graph(5)
    alpha = 0.2
    r = v.ppr([0, 2], alpha=alpha, iters=500)
    a = v.adjacency.toarray()
    w = a / a.sum(0, keepdims=True)
    exact = alpha * np.linalg.inv(np.eye(5) - (1 - alpha) * w)  # column j = PPR of target j
    assert np.allclose(r, exact[:, [0, 2]], atol=1e-5)
    assert np.allclose(r.sum(0), 1.0, atol=1e-5)
    nodes, scores = v.ppr_context([0, 2], k=2, alpha=alpha, iters=500)
    # from an end of a path, mass decays with distance; from the middle, the two neighbours tie
    assert nodes[0].tolist() == [1, 2]
    assert nodes[1].tolist() == [1, 3]
    assert scores[1, 0] == pytest.approx(scores[1, 1])
    assert (np.diff(scores, axis=1) <= 1e-9).all()


def test_ppr_context_pads_small_components():
    v = GraphView.from_records("x", [("a", "a", ""), ("b", "b", ""), ("c", "c", "")], [("a", "r", "b")])
    nodes, scores = v.ppr_context([0, 2], k=2)
    assert nodes[0].tolist() == [1, -1]
    assert nodes[1].tolist() == [-1, -1]  # isolated node: no context
    assert scores[1].tolist() == [0.0, 0.0]


def test_ppr_batches_agree():
    v = path_graph(7)
    full = ppr_matrix(v.adjacency, range(7), batch_size=512)
    small = ppr_matrix(v.adjacency, range(7), batch_size=2)
    assert np.allclose(full, small)


def test_wl_roles_on_known_graphs():
    p = path_graph(5).wl_colors()  # ends / second / middle are three roles
    assert p[0] == p[4] and p[1] == p[3]
    assert len({p[0], p[1], p[2]}) == 3
    cyc = GraphView.from_records("c", [], [(str(i), "r", str((i + 1) % 6)) for i in range(6)])
    assert len(set(cyc.wl_colors().tolist())) == 1  # regular graph: one role
    star = GraphView.from_records("s", [], [("hub", "r", f"leaf{i}") for i in range(4)])
    c = star.wl_colors()
    assert c[star.index["hub"]] != c[star.index["leaf0"]]
    assert len(set(c[[star.index[f"leaf{i}"] for i in range(4)]].tolist())) == 1
    assert (wl_colors(star.adjacency) == c).all()  # deterministic ids


def test_k_hop_and_networkx_graph(geo_store):
    v = GraphView.from_store(geo_store, "geo")
    d = v.k_hop([v.index["mozart"]], 2)
    assert {v.node_ids[i]: h for i, h in d.items()} == {"mozart": 0, "salzburg": 1, "austria": 2}
    g = v.graph
    assert g.number_of_nodes() == 9 and g.number_of_edges() == 8
    assert g.nodes["vienna"]["description"] == "capital city of Austria"
    assert g["austria"]["vienna"]["capital"]["relation_name"] == "capital"
    sub = v.subgraph(d)
    assert set(sub.nodes) == {"mozart", "salzburg", "austria"}
    assert v.stats()["components"] == 1
    with pytest.raises(KiraError, match="no KB named"):
        GraphView.from_store(geo_store, "nope")


def test_cache_memory_disk_and_invalidation(geo_store, tmp_path, monkeypatch):
    gv._LRU.clear()
    v1 = load_view(geo_store, "geo", cache_dir=tmp_path)
    assert load_view(geo_store, "geo", cache_dir=tmp_path) is v1  # memory hit
    assert len(list(tmp_path.glob("geo-all-*.pkl"))) == 1
    gv._LRU.clear()
    calls = []
    monkeypatch.setattr(GraphView, "from_store", classmethod(lambda *a, **k: calls.append(1)))
    v2 = load_view(geo_store, "geo", cache_dir=tmp_path)  # disk hit, no rebuild
    assert not calls and v2.node_ids == v1.node_ids and (v2.heads == v1.heads).all()
    monkeypatch.undo()
    geo_store.register_source("geo", "kb:test")  # a new version of the KB
    v3 = load_view(geo_store, "geo", cache_dir=tmp_path)
    assert v3 is not v1 and v3.key != v1.key
    assert len(list(tmp_path.glob("geo-all-*.pkl"))) == 1  # the stale pickle is gone
