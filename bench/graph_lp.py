"""Graph link prediction on a WordNet subset (entity-disjoint) + Graph-BERT on karate club.

WordNet: noun synsets (node text = "lemmas: gloss"), relations hypernym (@) and the three
meronyms (%m member, %s substance, %p part). The subset is the union of breadth-first
neighbourhoods (undirected, over those relations) grown from random seed synsets until
``--nodes`` synsets are reached; triples are those induced on the subset. **Entity-disjoint
split**: ``--test-frac`` of the subset's synsets (with degree 2–6, so no hub) are held out; test triples are
those joining a held-out synset to a kept one, training triples touch no held-out synset (held-out
synsets are isolated nodes of the training graph; triples between two held-out synsets are
dropped). Metrics: filtered MRR / Hits@10 over heads and tails, candidates = all subset synsets,
computed by ``kira.kb.evaluate.evaluate_link_prediction`` (the same code as the KB bench).

Models, all trained on the training triples only: TransE (``kira.kb.embeddings``), KEPLER
(``kira.kb.kepler.Kepler``: MiniLM, KE + MLM), Graph-BERT (MiniLM gloss features, pretrain + LP fine-tune),
GraphFormers (MiniLM layers, in-batch negatives). Ratios are printed against TransE.

Karate club: Graph-BERT node classification (learned id features, pretrain + fine-tune) on half
the members, accuracy on the other half, over 3 splits; peer = networkx's harmonic-function
label propagation on the same splits.

    HF_HUB_OFFLINE=1 python bench/graph_lp.py --nodes 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import deque

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from kira import benchmarks  # noqa: E402

RELS = {"@": "hypernym", "%m": "member meronym", "%s": "substance meronym", "%p": "part meronym"}


# ---- data ---------------------------------------------------------------------------------------
def wordnet_subset(n_nodes: int, test_frac: float, seed: int):
    from kira.kb.wordnet import iter_synsets
    from kira.schema import Triple

    syn = {s.id: s for s in iter_synsets(pos="n")}
    edges = {(s.id, sym, t) for s in syn.values() for sym, t, _, _ in s.pointers if sym in RELS and t in syn}
    nb: dict[str, list[str]] = {}
    for h, _, t in edges:
        nb.setdefault(h, []).append(t)
        nb.setdefault(t, []).append(h)
    rng = np.random.default_rng(seed)
    ids = sorted(nb)
    chosen: dict[str, None] = {}
    while len(chosen) < n_nodes:
        q = deque([ids[rng.integers(len(ids))]])
        grown = 0
        while q and len(chosen) < n_nodes and grown < max(50, n_nodes // 10):
            x = q.popleft()
            if x in chosen:
                continue
            chosen[x] = None
            grown += 1
            q.extend(y for y in sorted(nb[x]) if y not in chosen)
    keep = set(chosen)
    trip = sorted((h, r, t) for h, r, t in edges if h in keep and t in keep)
    deg: dict[str, int] = {}
    for h, _, t in trip:
        deg[h] = deg.get(h, 0) + 1
        deg[t] = deg.get(t, 0) + 1
    cand = sorted(e for e in keep if 2 <= deg.get(e, 0) <= 6)  # hubs stay: holding one out empties the graph
    held = set(rng.choice(cand, size=int(test_frac * len(keep)), replace=False).tolist())
    train = [Triple("wn", h, RELS[r], t, "train") for h, r, t in trip if h not in held and t not in held]
    test = [Triple("wn", h, RELS[r], t, "test") for h, r, t in trip if (h in held) != (t in held)]
    ents = sorted(keep)
    entities = [(e, syn[e].name, syn[e].gloss) for e in ents]
    return entities, train, test, held


def evaluate(pred, test, known) -> dict:
    from kira.kb.evaluate import evaluate_embedder

    r = evaluate_embedder(pred, test, known, batch_size=256)
    return {"mrr": round(r.mrr, 4), "hits@10": round(r.hits_at_10, 4), "n": r.n}


# ---- models -------------------------------------------------------------------------------------
def run_transe(entities, train, test, known, epochs: int) -> dict:
    from kira.kb.embeddings import KGEmbedder

    emb = KGEmbedder("transe", dim=64, epochs=epochs, batch_size=256, lr=0.01, num_negs=4, device="cpu")
    emb.fit(train, entities=[e for e, _, _ in entities], relations=list(RELS.values()))
    return evaluate(emb, test, known)


def run_kepler(entities, train, test, known, epochs: int, batch: int) -> dict:
    try:
        from kira.kb.kepler import Kepler
    except ImportError:
        return {"skipped": "kira.kb.kepler not available in this checkout"}
    from kira.schema import Entity

    model = Kepler(encoder="minilm-l6", epochs=epochs, batch_size=batch, max_length=32, lr=2e-5)
    rep = model.fit(train, entities=[Entity(e, "wn", n, [], d) for e, n, d in entities], relations=list(RELS.values()))
    return {**evaluate(model, test, known), "train_loss": round(float(np.mean(rep["losses"][-5:])), 3)}


def run_graph_bert(view, feats, train, test, known, pre_steps: int, steps: int) -> dict:
    from kira.graph.graph_bert_predictor import GraphBertLinkPredictor

    p = GraphBertLinkPredictor.create(view, feats, device="auto", k=7, hidden=64, layers=2, heads=4, ffn=128,
                                      encoder="minilm-l6")
    rep = p.fit(train, steps=steps, pretrain_steps=pre_steps, batch_size=128, lr=1e-3)
    return {**evaluate(p, test, known), "train_loss": round(rep["last_loss"], 3)}


def run_graphformers(view, train, test, known, steps: int, batch: int) -> dict:
    from kira.graph.graphformers import GraphFormersLinkPredictor

    p = GraphFormersLinkPredictor.create(view, base="minilm-l6", device="auto", neighbours=2, max_length=24)
    rep = p.fit(train, steps=steps, batch_size=batch, lr=5e-5)
    return {**evaluate(p, test, known), "train_loss": round(rep["last_loss"], 3)}


def karate(seeds=(0, 1, 2), pre_steps: int = 30, steps: int = 40) -> dict:
    import networkx as nx
    from networkx.algorithms.node_classification import harmonic_function

    from kira.graph import graph_bert as gb
    from kira.graph import graph_bert_train as gbt
    from kira.graph.view import GraphView

    g = nx.karate_club_graph()
    v = GraphView.from_records("karate", [(str(i), f"member {i}", "") for i in g.nodes],
                               [(str(a), "knows", str(b)) for a, b in g.edges])
    y = np.asarray([0 if g.nodes[i]["club"] == "Mr. Hi" else 1 for i in g.nodes])
    inputs = gb.prepare_inputs(v, k=7)
    acc_gb, acc_hf = [], []
    for s in seeds:
        rng = np.random.default_rng(s)
        perm = rng.permutation(34)
        tr, te = perm[:17], perm[17:]
        torch.manual_seed(s)
        m = gb.GraphBert(gb.GraphBertConfig(n_nodes=34, k=7, hidden=32, heads=2, ffn=64, n_classes=2)).attach(inputs)
        gbt.pretrain(m, v, steps=pre_steps, batch_size=16, lr=3e-3, seed=s)
        gbt.train_node_classification(m, tr, y[tr], steps=steps, batch_size=17, lr=3e-3, seed=s)
        acc_gb.append(float((gbt.predict_classes(m, te) == y[te]).mean()))
        h = g.copy()
        for i in h.nodes:
            h.nodes[i].pop("label", None)
        for i in tr:
            h.nodes[int(i)]["label"] = int(y[i])
        pred = np.asarray(harmonic_function(h, label_name="label"))
        acc_hf.append(float((pred[te] == y[te]).mean()))
    return {"graph_bert_acc": round(float(np.mean(acc_gb)), 4), "graph_bert_acc_per_split": acc_gb,
            "harmonic_acc": round(float(np.mean(acc_hf)), 4), "harmonic_acc_per_split": acc_hf,
            "ratio_vs_harmonic": round(float(np.mean(acc_gb)) / max(float(np.mean(acc_hf)), 1e-9), 3)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--test-frac", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--transe-epochs", type=int, default=200)
    ap.add_argument("--gb-pretrain", type=int, default=100)
    ap.add_argument("--gb-steps", type=int, default=300)
    ap.add_argument("--gf-steps", type=int, default=100)
    ap.add_argument("--gf-batch", type=int, default=16)
    ap.add_argument("--kepler-epochs", type=int, default=2)
    ap.add_argument("--kepler-batch", type=int, default=16)
    ap.add_argument("--skip", default="", help="comma list of models to skip: transe,kepler,graph-bert,graphformers,karate")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, help="also write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/graph_lp.yaml")
    a = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out_file = benchmarks.out_path(a.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    skip = set(filter(None, a.skip.split(",")))
    from kira.graph.graph_bert import node_features
    from kira.graph.view import GraphView

    torch.manual_seed(a.seed)
    out: dict = {"setup": {}, "link_prediction": {}, "seconds": {}}
    t = time.perf_counter()
    entities, train, test, held = wordnet_subset(a.nodes, a.test_frac, a.seed)
    known = train + test
    view = GraphView.from_records("wn", entities, [(x.head, x.relation, x.tail) for x in train],
                                  [(r, r) for r in RELS.values()])
    out["setup"] = {"nodes": len(entities), "train_triples": len(train), "test_triples": len(test),
                    "held_out_entities": len(held),
                    "relations": {r: sum(x.relation == r for x in known) for r in RELS.values()},
                    "threads": torch.get_num_threads(), "device": "cuda" if torch.cuda.is_available() else "cpu"}
    out["seconds"]["data"] = round(time.perf_counter() - t, 1)
    print(json.dumps(out["setup"]), flush=True)
    lp = out["link_prediction"]
    runs = [("transe", lambda: run_transe(entities, train, test, known, a.transe_epochs)),
            ("kepler", lambda: run_kepler(entities, train, test, known, a.kepler_epochs, a.kepler_batch)),
            ("graph-bert", lambda: run_graph_bert(view, node_features(view, "minilm-l6"), train, test, known,
                                                  a.gb_pretrain, a.gb_steps)),
            ("graphformers", lambda: run_graphformers(view, train, test, known, a.gf_steps, a.gf_batch))]
    for name, fn in runs:
        if name in skip:
            continue
        t = time.perf_counter()
        lp[name] = fn()
        out["seconds"][name] = round(time.perf_counter() - t, 1)
        print(name, json.dumps(lp[name]), f"({out['seconds'][name]} s)", flush=True)
    base = lp.get("transe", {}).get("mrr")
    if base:
        for r in lp.values():
            if "mrr" in r:
                r["mrr_ratio_vs_transe"] = round(r["mrr"] / base, 2)
    if "karate" not in skip:
        t = time.perf_counter()
        out["karate"] = karate()
        out["seconds"]["karate"] = round(time.perf_counter() - t, 1)
    if a.json:
        print(json.dumps(out))
    else:
        print("\nlink prediction (entity-disjoint WordNet subset, filtered, both sides)")
        for name, r in lp.items():
            if "mrr" in r:
                print(f"  {name:13s} MRR {r['mrr']:.4f}  Hits@10 {r['hits@10']:.4f}  "
                      f"ratio vs TransE {r.get('mrr_ratio_vs_transe', float('nan'))}")
            else:
                print(f"  {name:13s} {r}")
        if "karate" in out:
            k = out["karate"]
            print(f"karate: Graph-BERT acc {k['graph_bert_acc']:.3f}  harmonic-function acc {k['harmonic_acc']:.3f}  "
                  f"ratio {k['ratio_vs_harmonic']}")
        print("seconds:", out["seconds"])
    if out_file:
        write_record(out_file, a, out, load)


def write_record(path, a, out: dict, load) -> None:
    """Each text-based model's MRR against TransE's of the same run; Graph-BERT on karate against label propagation."""
    lp, metrics = out["link_prediction"], []
    base = lp.get("transe", {}).get("mrr")
    for name, r in lp.items():
        if "mrr" not in r or (name == "transe" and base):
            continue
        label = f"{name} MRR ({out['setup']['nodes']} nodes, entity-disjoint)"
        if base:
            metrics.append(benchmarks.metric(label, r["mrr"], "TransE MRR, same run", base, r["mrr_ratio_vs_transe"]))
        else:
            metrics.append(benchmarks.metric(label, r["mrr"]))
    if "karate" in out:
        k = out["karate"]
        metrics.append(benchmarks.metric("karate Graph-BERT accuracy", k["graph_bert_acc"],
                                         "harmonic-function label propagation, same splits, same run",
                                         k["harmonic_acc"], k["ratio_vs_harmonic"]))
    machine = benchmarks.machine(f"{out['setup']['threads']} torch threads")
    benchmarks.write(path, benchmarks.record(__file__, metrics, load=load, machine_desc=machine,
                                             details={"args": vars(a), **out}))


if __name__ == "__main__":
    main()
