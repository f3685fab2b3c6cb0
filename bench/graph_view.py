"""Graph view at WordNet scale: build vs cached load, batched PPR vs networkx pagerank per target.

The whole WordNet 3.0 noun graph (82k synsets, hypernym + meronym + all other noun pointers) is
built from records, pickled as ``load_view`` does, and loaded back; then personalised PageRank
for ``--targets`` nodes is computed with the batched sparse power iteration of
``kira.graph.view`` and, for a few of them, with ``networkx.pagerank(personalization=...)``.
Prints the speed-up ratios (peer = rebuild / networkx, same run) and the top-10 overlap.

    HF_HUB_OFFLINE=1 python bench/graph_view.py --targets 256 --nx-targets 3
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
import time
from pathlib import Path

import numpy as np

from kira import benchmarks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=256)
    ap.add_argument("--nx-targets", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, help="also write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/graph_view.yaml")
    a = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(a.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    import networkx as nx

    from kira.graph.view import GraphView
    from kira.kb.wordnet import RELATION_NAMES, iter_synsets

    syn = list(iter_synsets(pos="n"))
    ids = {s.id for s in syn}
    t = time.perf_counter()
    view = GraphView.from_records("wn-n", [(s.id, s.name, s.gloss) for s in syn],
                                  [(s.id, RELATION_NAMES[p], tid) for s in syn for p, tid, _, _ in s.pointers
                                   if tid in ids])
    _ = view.adjacency
    build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "v.pkl"
        with path.open("wb") as f:
            pickle.dump(view, f, protocol=pickle.HIGHEST_PROTOCOL)
        t = time.perf_counter()
        with path.open("rb") as f:
            loaded = pickle.load(f)
        _ = loaded.adjacency
        load_s = time.perf_counter() - t
    rng = np.random.default_rng(0)
    deg = view.degree()
    targets = rng.choice(np.flatnonzero(deg > 0), size=a.targets, replace=False)
    t = time.perf_counter()
    nodes, _ = view.ppr_context(targets, k=10, alpha=0.15, iters=30, batch_size=256)
    ppr_s = time.perf_counter() - t
    g = nx.Graph()
    g.add_nodes_from(range(view.n_nodes))
    a_coo = view.adjacency.tocoo()
    g.add_edges_from(zip(a_coo.row.tolist(), a_coo.col.tolist(), strict=True))
    overlap = []
    t = time.perf_counter()
    for j in range(a.nx_targets):
        tgt = int(targets[j])
        pr = nx.pagerank(g, alpha=0.85, personalization={tgt: 1.0}, max_iter=100, tol=1e-6)  # networkx defaults
        pr.pop(tgt, None)
        top = sorted(pr, key=pr.get, reverse=True)[:10]
        overlap.append(len(set(top) & set(nodes[j].tolist())) / 10)
    nx_s = (time.perf_counter() - t) / a.nx_targets
    res = {"nodes": view.n_nodes, "edges": view.n_edges, "build_s": round(build_s, 2), "cache_load_s": round(load_s, 2),
           "cache_speedup": round(build_s / load_s, 1), "ppr_targets": a.targets,
           "ppr_batched_per_target_ms": round(1000 * ppr_s / a.targets, 2), "nx_pagerank_per_target_ms": round(1000 * nx_s, 1),
           "ppr_speedup_vs_networkx": round(nx_s / (ppr_s / a.targets), 1),
           "top10_overlap_with_networkx": round(float(np.mean(overlap)), 3)}
    print(json.dumps(res) if a.json else "\n".join(f"{k}: {v}" for k, v in res.items()))
    if out:
        speedup = "peer_value / value"
        metrics = [
            benchmarks.metric("batched personalised PageRank ms per target", round(1000 * ppr_s / a.targets, 3),
                              "networkx.pagerank(personalization={target: 1}), default tolerance, same run",
                              round(1000 * nx_s, 3), nx_s / (ppr_s / a.targets), ratio_of=speedup),
            benchmarks.metric("cached view load seconds", round(load_s, 4), "rebuilding the view from records, same run",
                              round(build_s, 4), build_s / load_s, ratio_of=speedup),
            benchmarks.metric("top-10 overlap with networkx PageRank", res["top10_overlap_with_networkx"]),
        ]
        benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details=res))


if __name__ == "__main__":
    main()
