"""Retrieval throughput: kira's retrievers against their raw engines, on the same index and queries.

1. Dense: ``DenseRetriever.search_vectors`` (FAISS search + id mapping + passage text from the
   version's memory-mapped docstore + ``Evidence``) vs raw ``faiss.Index.search`` on the very same
   index object and the same pre-encoded query vectors (query encoding excluded from both). Goal
   ≥ 0.9. "cold" re-opens the docstore before each pass (``--lucene-docstore``: the Lucene doc
   store of versions built before docstores, with its parsed-doc LRU cleared), "warm" does not.
2. BM25: ``BM25Retriever.batch_search`` (returns ``Evidence`` with text) vs pyserini's own
   ``LuceneSearcher.batch_search`` on the same Lucene index, same k1/b, k and threads — both bare (Java
   hit objects, nothing read) and reading what a caller needs (docid, score, stored raw text) —
   and vs ``bm25s`` (numpy BM25, same k1/b, own tokenizer without stemming) on the same passages.
   Goal ≥ 1.0 against pyserini.

Corpus: WordNet synsets as passages (``lemma, lemma: gloss``; 117k exist; ``--n`` of them), or
synthetic passages from the WordNet vocabulary when WordNet is missing. Dense vectors are random
unit vectors (dim 384, MiniLM's width): encoding 100k passages with MiniLM on 2 CPU cores takes
longer than the whole benchmark, and search cost does not depend on what the vectors mean.
The index version is cached under ``--workdir`` and reused by later runs with the same ``--n``.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/retrieval_qps.py            # 100k passages, 1000 queries
    HF_HUB_OFFLINE=1 .venv/bin/python bench/retrieval_qps.py --n 20000 --queries 300   # quick
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import numpy as np  # noqa: E402

from kira import benchmarks  # noqa: E402
from kira.schema import Passage  # noqa: E402

DIM = 384
STOP = set(["a", "an", "the", "of", "or", "and", "to", "in", "on", "for", "with", "by", "as", "at", "from", "that", "which", "is", "be", "who", "whose", "its", "it"])


def wordnet_passages(n: int, wordnet_dir: str = "/usr/share/wordnet") -> list[Passage]:
    """``n`` passages: WordNet synsets first, synthetic WordNet-vocabulary text to fill up."""
    out: list[Passage] = []
    vocab: list[str] = []
    if Path(wordnet_dir, "data.noun").exists():
        from kira.kb.wordnet import iter_synsets, synset_text

        for s in iter_synsets(wordnet_dir):
            out.append(Passage(id=f"wn:{s.id}", title=s.lemmas[0].replace("_", " "),
                               text=synset_text(s).replace("_", " "), source="wordnet", metadata={"pos": s.pos}))
            if len(vocab) < 200_000:
                vocab.extend(w for w in s.gloss.lower().split() if w.isalpha())
            if len(out) >= n:
                return out
    rng = random.Random(0)
    vocab = vocab or [f"w{i}" for i in range(50_000)]
    while len(out) < n:
        i = len(out)
        words = rng.choices(vocab, k=rng.randint(8, 40))
        out.append(Passage(id=f"syn:{i}", title=words[0], text=" ".join(words), source="synthetic"))
    return out


def make_queries(passages: list[Passage], nq: int, seed: int = 1) -> list[str]:
    """Short keyword queries: 3–5 content words drawn from random passages' text."""
    rng = random.Random(seed)
    qs = []
    while len(qs) < nq:
        p = rng.choice(passages)
        words = [w.strip(".,;:()'\"").lower() for w in p.text.split()]
        words = [w for w in words if w.isalpha() and w not in STOP]
        if len(words) >= 3:
            qs.append(" ".join(rng.sample(words, min(len(words), rng.randint(3, 5)))))
    return qs


def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v


def build_version(workdir: Path, passages: list[Passage]):
    """A version in index build's on-disk format: Lucene (raw docs) + FAISS IDMap2 flat + docids."""
    import faiss

    from kira.index_build import docstore
    from kira.index_build.lucene import LuceneWriter, raw_doc
    from kira.index_build.versions import IndexVersion, write_docids

    v = workdir / "indexes" / "v0001"
    mf = v / "manifest.json"
    if mf.exists() and json.loads(mf.read_text()).get("passages") == len(passages) and docstore.exists(v):
        return IndexVersion.open(v)
    if v.exists():
        shutil.rmtree(v)
    (v / "faiss").mkdir(parents=True)
    t = time.perf_counter()
    w, ds = LuceneWriter(v / "lucene"), docstore.DocStoreWriter(v)
    for s in range(0, len(passages), 10_000):
        raws = [raw_doc(p) for p in passages[s:s + 10_000]]
        w.add_raw(raws)
        ds.add(raws)
    w.close()
    ds.close()
    print(f"# built Lucene over {len(passages)} passages in {time.perf_counter() - t:.1f}s", file=sys.stderr)
    index = faiss.IndexIDMap2(faiss.IndexFlatIP(DIM))
    index.add_with_ids(unit_vectors(len(passages), DIM, 0), np.arange(len(passages), dtype=np.int64))
    faiss.write_index(index, str(v / "faiss" / "index.faiss"))
    write_docids(v / "faiss" / "docids.txt", [p.id for p in passages])
    mf.write_text(json.dumps({"version": "v0001", "passages": len(passages), "bench": "retrieval_qps",
                              "encoder": {"spec": "minilm-l6", "pooling": "mean", "normalize": True, "dim": DIM},
                              "faiss": {"type": "flat", "ntotal": len(passages), "metric": "inner_product"},
                              "bm25": {"k1": 0.9, "b": 0.4}}))
    return IndexVersion.open(v)


def interleaved(fns: dict, reps: int) -> dict[str, float]:
    """Fastest of ``reps`` runs (seconds) per function, the functions alternating within each round
    so that load drifting on a shared machine hits every side alike; the minimum is the run least
    disturbed by other processes."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: min(ts) for name, ts in times.items()}


def bench_dense(version, nq: int, k: int, batch: int, reps: int, threads: int, lucene_docstore: bool = False) -> dict:
    import faiss

    from kira.retriever.dense import DenseRetriever
    from kira.retriever.docstore import LuceneDocStore, open_docstore, open_searcher

    faiss.omp_set_num_threads(threads)
    dense = DenseRetriever(version, threads=threads)
    if lucene_docstore:
        dense.docs = LuceneDocStore(open_searcher(version.lucene_dir))
    index = dense.index  # the very same index object for both sides
    q = unit_vectors(nq, DIM, 7)
    batches = [q[s:s + batch] for s in range(0, nq, batch)]

    def raw():
        for b in batches:
            index.search(b, k)

    def kira_cold():
        if isinstance(dense.docs, LuceneDocStore):
            dense.docs._cache.clear()  # every passage text fetched from Lucene again
        else:
            dense.docs.close()
            dense.docs = open_docstore(version.path, dense.docids)  # a fresh map; nothing parsed is kept
        for b in batches:
            dense.search_vectors(b, k)

    def kira_warm():
        for b in batches:
            dense.search_vectors(b, k)

    raw()
    kira_warm()  # JIT/mmap warm-up for both engines
    t = interleaved({"raw": raw, "cold": kira_cold}, reps)
    t_raw, t_cold = t["raw"], t["cold"]
    kira_warm()
    t_warm = interleaved({"warm": kira_warm}, reps)["warm"]
    hits = dense.search_vectors(q[:1], k)[0]
    assert len(hits) == k and hits[0].text, "dense retriever returned no text"
    return {"k": k, "queries": nq, "batch": batch, "docstore": type(dense.docs).__name__, "faiss_qps": nq / t_raw,
            "kira_qps_cold_cache": nq / t_cold, "kira_qps_warm_cache": nq / t_warm, "ratio_cold": t_raw / t_cold, "ratio_warm": t_raw / t_warm}


def bench_bm25(version, passages: list[Passage], queries: list[str], k: int, reps: int, threads: int,
               with_bm25s: bool, lucene_docstore: bool = False) -> dict:
    from kira.retriever.bm25 import BM25Retriever
    from kira.retriever.docstore import LuceneDocStore, open_searcher

    kira = BM25Retriever(version, k1=0.9, b=0.4, threads=threads)
    if lucene_docstore:
        kira.docs = LuceneDocStore(kira.searcher)
    ps = open_searcher(version.lucene_dir)
    ps.set_bm25(0.9, 0.4)
    qids = [str(i) for i in range(len(queries))]

    def pyserini_bare():
        return ps.batch_search(queries, qids, k=k, threads=threads)

    def pyserini_read():
        res = ps.batch_search(queries, qids, k=k, threads=threads)
        return {q: [(h.docid, h.score, h.lucene_document.get("raw")) for h in hits] for q, hits in res.items()}

    def kira_batch():
        return kira.batch_search(queries, k, threads=threads)

    for f in (pyserini_bare, kira_batch):
        f()
    t = interleaved({"bare": pyserini_bare, "read": pyserini_read, "kira": kira_batch}, reps)
    t_bare, t_read, t_kira = t["bare"], t["read"], t["kira"]
    # same engine, same answers
    ours = kira_batch()
    ref = pyserini_bare()
    assert all([e.id for e in ours[i]] == [h.docid for h in ref[str(i)]] for i in range(len(queries)))
    nq = len(queries)
    out = {"k": k, "queries": nq, "threads": threads, "pyserini_qps": nq / t_bare,
           "pyserini_read_qps": nq / t_read, "kira_qps": nq / t_kira,
           "ratio_vs_pyserini": t_bare / t_kira, "ratio_vs_pyserini_read": t_read / t_kira}
    if with_bm25s:
        import bm25s

        corpus = [f"{p.title}\n{p.text}" for p in passages]
        t = time.perf_counter()
        idx = bm25s.BM25(k1=0.9, b=0.4, method="lucene")
        idx.index(bm25s.tokenize(corpus, stopwords="en", show_progress=False), show_progress=False)
        out["bm25s_index_s"] = time.perf_counter() - t

        def run_bm25s():
            toks = bm25s.tokenize(queries, stopwords="en", show_progress=False)
            docs, scores = idx.retrieve(toks, k=k, show_progress=False, n_threads=threads)
            return [[(passages[int(d)].id, float(s)) for d, s in zip(dr, sr, strict=True)]
                    for dr, sr in zip(docs, scores, strict=True)]

        run_bm25s()
        t_b = interleaved({"bm25s": run_bm25s}, reps)["bm25s"]
        out.update({"bm25s_qps": nq / t_b, "ratio_vs_bm25s": t_b / t_kira})
    return out


def write_record(out: Path, res: dict, load: float | str, argv: list[str] | None) -> None:
    """The run as a kira.benchmarks record: every kira/peer throughput pair with its goal."""
    metrics = []
    for d in res["dense"]:
        for cache in ("cold", "warm"):
            metrics.append(benchmarks.metric(
                f"dense k={d['k']} kira q/s ({cache} doc cache)", round(d[f"kira_qps_{cache}_cache"], 2),
                "raw FAISS search on the same index and vectors, same run", round(d["faiss_qps"], 2),
                d[f"ratio_{cache}"], ">= 0.9"))
    for b in res["bm25"]:
        kira_qps = round(b["kira_qps"], 2)
        metrics.append(benchmarks.metric(f"bm25 k={b['k']} kira q/s", kira_qps, "pyserini batch_search (bare), same run",
                                         round(b["pyserini_qps"], 2), b["ratio_vs_pyserini"], ">= 1.0"))
        metrics.append(benchmarks.metric(
            f"bm25 k={b['k']} kira q/s vs pyserini reading hits", kira_qps,
            "pyserini batch_search + reading docid/score/raw text per hit, same run", round(b["pyserini_read_qps"], 2),
            b["ratio_vs_pyserini_read"]))
        if "bm25s_qps" in b:
            metrics.append(benchmarks.metric(f"bm25 k={b['k']} kira q/s vs bm25s", kira_qps,
                                             "bm25s, same k1/b, same run", round(b["bm25s_qps"], 2), b["ratio_vs_bm25s"]))
    machine = benchmarks.machine(f"{res['threads']} threads (FAISS OMP, Anserini batch threads, bm25s n_threads)")
    benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details=res, machine_desc=machine, argv=argv))


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000, help="passages")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, nargs="+", default=[10, 100])
    ap.add_argument("--batch", type=int, default=100, help="dense queries per search call")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-bm25s", action="store_true")
    ap.add_argument("--lucene-docstore", action="store_true",
                    help="hit text from Lucene (how versions built before docstores read), for before/after")
    ap.add_argument("--workdir", default="/tmp/kira-bench-retrieval")
    ap.add_argument("--json", action="store_true", help="print one JSON object (last stdout line: "
                    "Lucene's indexer logs to stdout while a first run builds the index)")
    ap.add_argument("--json-out", help="also write the raw JSON result to this file")
    ap.add_argument("--out", help="also write the record (kira.benchmarks schema) here, "
                    "e.g. bench/regressions/retrieval_qps.yaml")
    a = ap.parse_args(argv)
    load = benchmarks.machine_load()
    try:
        out = benchmarks.out_path(a.out, __file__)
    except ValueError as e:
        ap.error(str(e))
    os.environ.setdefault("KIRA_THREADS", str(a.threads))
    t0 = time.perf_counter()
    passages = wordnet_passages(a.n)
    version = build_version(Path(a.workdir), passages)
    queries = make_queries(passages, a.queries)
    res: dict = {"n": len(passages), "corpus": passages[0].source, "threads": a.threads, "dense": [], "bm25": []}
    for k in a.k:
        res["dense"].append(bench_dense(version, a.queries, k, a.batch, a.reps, a.threads, a.lucene_docstore))
        print(f"# {json.dumps(res['dense'][-1])}", file=sys.stderr, flush=True)
        res["bm25"].append(bench_bm25(version, passages, queries, k, a.reps, a.threads, not a.no_bm25s,
                                      a.lucene_docstore))
        print(f"# {json.dumps(res['bm25'][-1])}", file=sys.stderr, flush=True)
    res["total_s"] = time.perf_counter() - t0
    if a.json_out:
        Path(a.json_out).write_text(json.dumps(res, indent=1))
    if out:
        write_record(out, res, load, None if argv is None else [__file__, *argv])
    if a.json:
        print(json.dumps(res))
        return res
    print(f"corpus: {res['n']} {res['corpus']} passages, {a.queries} queries, {a.threads} threads")
    for d in res["dense"]:
        print(f"dense k={d['k']:<4} faiss {d['faiss_qps']:9.1f} q/s   kira {d['kira_qps_cold_cache']:9.1f} q/s cold "
              f"(ratio {d['ratio_cold']:.3f})   {d['kira_qps_warm_cache']:9.1f} q/s warm (ratio {d['ratio_warm']:.3f})")
    for b in res["bm25"]:
        line = (f"bm25  k={b['k']:<4} pyserini {b['pyserini_qps']:8.1f} q/s (bare)  {b['pyserini_read_qps']:8.1f} q/s "
                f"(reading hits)   kira {b['kira_qps']:8.1f} q/s   ratio {b['ratio_vs_pyserini']:.3f} bare / "
                f"{b['ratio_vs_pyserini_read']:.3f} reading")
        if "bm25s_qps" in b:
            line += f"   bm25s {b['bm25s_qps']:8.1f} q/s (ratio {b['ratio_vs_bm25s']:.3f})"
        print(line)
    print(f"total {res['total_s']:.1f}s")
    return res


if __name__ == "__main__":
    main()
