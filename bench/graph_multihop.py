"""Multi-hop questions: text retrieval alone vs text + graph expansion, on a WordNet subset.

A throw-away workspace gets a KB (the same WordNet noun subset as ``graph_lp.py``: hypernym and
meronym triples, entity name = first lemma, description = gloss) added through ``kira.kb.plugin.
add_kb`` — which also verbalizes every entity's facts into text passages — and a BM25 index
(Lucene) over those passages: the text retriever therefore *does* see every KB fact as text,
one entity's facts per passage. Questions are two-relation paths from ``kira.graph.multihop``
("What is the hypernym of the hypernym of X?"). Answer recall@k is measured for BM25 alone, graph
expansion alone and BM25 + graph (RRF), and printed as a ratio against BM25 (the peer).

    HF_HUB_OFFLINE=1 python bench/graph_multihop.py --nodes 1000 --questions 150 --k 5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from kira import benchmarks

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--encoder", default="none", help="graph relevance encoder (zoo spec) or 'none' = token overlap")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", default=None, help="also write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/graph_multihop.yaml")
    a = ap.parse_args()
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(a.out, __file__)
    except ValueError as e:
        ap.error(str(e))

    from graph_lp import wordnet_subset

    from kira.config import load_config
    from kira.graph.expansion import GraphExpansionRetriever
    from kira.graph.multihop import compare_retrieval, questions_from_store
    from kira.index_build.build import build_index
    from kira.kb.plugin import add_kb
    from kira.kb.store import DuckDBStore
    from kira.retriever import open_retrievers

    t0 = time.perf_counter()
    entities, triples, _, _ = wordnet_subset(a.nodes, 0.0, a.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        ws.mkdir()
        kb_file = Path(tmp) / "wn.jsonl"
        with kb_file.open("w") as f:
            for e, n, d in entities:
                f.write(json.dumps({"type": "entity", "id": e, "name": n, "description": d}) + "\n")
            for t in triples:
                f.write(json.dumps({"head": t.head, "relation": t.relation, "tail": t.tail}) + "\n")
        cfg = load_config(ws)
        store = DuckDBStore(cfg.store_path)
        tpl = {"hypernym": "{subject} is a kind of {object}", "part meronym": "{object} is a part of {subject}",
               "member meronym": "{object} is a member of {subject}",
               "substance meronym": "{object} is a substance of {subject}"}
        add_kb(store, "wn", "jsonl", [str(kb_file)], templates=tpl)
        build_index(cfg, store, dense=False, progress=False)
        setup_s = time.perf_counter() - t0
        qs = questions_from_store(store, "wn", max_questions=a.questions, max_per_pair=a.questions, seed=a.seed,
                                  max_answers=2)
        bm25 = open_retrievers(cfg.indexes_dir, cfg)["bm25"]
        graph = GraphExpansionRetriever.from_config(cfg, store, encoder=None if a.encoder == "none" else a.encoder)
        t1 = time.perf_counter()
        res = compare_retrieval(qs, bm25, graph, k=a.k)
        res["seconds"] = {"setup": round(setup_s, 1), "compare": round(time.perf_counter() - t1, 1)}
        res["setup"] = {"nodes": len(entities), "triples": len(triples), "passages": store.count_passages(),
                        "questions": len(qs), "encoder": a.encoder,
                        "example": qs[0] if qs else None}
        key = f"recall@{a.k}"
        base = res["text"][key]
        res["ratio_vs_text"] = {n: round(res[n][key] / base, 2) if base else None for n in ("graph", "text+graph")}
        store.close()
    if out:
        peer = "BM25 over the KB's verbalized passages, same questions, same run"
        metrics = [benchmarks.metric(f"{key} {n}", round(res[n][key], 4), peer, round(base, 4), res["ratio_vs_text"][n])
                   for n in ("graph", "text+graph")]
        benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details={"args": vars(a), **res}))
    if a.json:
        print(json.dumps(res))
        return
    print(json.dumps(res["setup"]))
    for n in ("text", "graph", "text+graph"):
        print(f"  {n:11s} {key} {res[n][key]:.3f}")
    print("ratio vs text (BM25):", res["ratio_vs_text"], "seconds:", res["seconds"])


if __name__ == "__main__":
    main()
