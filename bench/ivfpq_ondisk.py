"""Dense search past RAM: N (default 10M) 384-d vectors in an IVF-PQ index whose inverted lists
live on disk (``index_build.faiss_index.build_ivf_ondisk``), loaded the way a version loads it
(``IndexVersion.load_faiss``: lists memory-mapped beside ``index.faiss``).

Prints build time per stage, peak RSS of this process (goal < 24 GB; the flat float32 vectors of
10M passages alone are 15.4 GB), index size on disk, and recall@10 of the IVF-PQ search against
exact inner-product search over all N vectors for a sample of queries, at several ``nprobe`` (and
how often the exact nearest neighbour is in the top 10: PQ codes bound the first figure, not this).

Vectors are "real-shaped": topics (``--clusters`` centres on the unit sphere), each split into
sub-topics (``--subclusters`` in all, ~10 vectors each at 10M), so a vector has a handful of near
neighbours (cosine ~0.8, paraphrases of one fact) inside a topic (~0.6) -- the structure passage
embeddings have. Isotropic noise around topic centres alone (``--subclusters 0``) is the worst case
for PQ: every neighbour is about as far as the rest of its topic. Vectors are generated chunk by
chunk from fixed seeds, so the exact search regenerates them instead of keeping 15 GB in memory.
Queries are fresh draws from the same mixture.

    python bench/ivfpq_ondisk.py --n 10000000 --out bench/regressions/
    python bench/ivfpq_ondisk.py --n 200000 --chunk 50000      # a quick check
"""

from __future__ import annotations

import argparse
import resource
import shutil
import time
from pathlib import Path

import numpy as np

from kira import benchmarks

DIM = 384


class Mixture:
    """Topic centres, and sub-topic offsets (float16, ~0.8 GB for 1M) that place sub-topics inside them."""

    def __init__(self, n_clusters: int, n_sub: int, noise: float, sub_spread: float = 0.6, seed: int = 0):
        rng = np.random.default_rng(seed)
        c = rng.standard_normal((n_clusters, DIM), dtype=np.float32)
        self.c = c / np.linalg.norm(c, axis=1, keepdims=True)
        self.n_sub, self.noise = n_sub, noise
        self.sub = None
        if n_sub:
            o = rng.standard_normal((n_sub, DIM), dtype=np.float32)
            self.sub = (sub_spread * o / np.linalg.norm(o, axis=1, keepdims=True)).astype(np.float16)

    def draw(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        if self.sub is None:
            v = self.c[rng.integers(0, len(self.c), n)]
        else:
            j = rng.integers(0, self.n_sub, n)
            v = self.c[j % len(self.c)] + self.sub[j].astype(np.float32)
        v = v + self.noise * rng.standard_normal((n, DIM), dtype=np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        return v


def chunks(mix: Mixture, n: int, size: int):
    """``(vectors, ids)`` for ids 0..n-1, chunk i drawn with seed 1000 + i (reproducible)."""
    for i, start in enumerate(range(0, n, size)):
        m = min(size, n - start)
        yield mix.draw(m, 1000 + i), np.arange(start, start + m, dtype=np.int64)


def exact_top(mix: Mixture, q: np.ndarray, n: int, size: int, k: int) -> np.ndarray:
    """Exact top-``k`` ids by inner product over all ``n`` vectors, regenerated chunk by chunk."""
    best_s = np.full((len(q), k), -np.inf, dtype=np.float32)
    best_i = np.zeros((len(q), k), dtype=np.int64)
    for vecs, ids in chunks(mix, n, size):
        s = q @ vecs.T
        top = np.argpartition(-s, k, axis=1)[:, :k]
        cand_s = np.concatenate([best_s, np.take_along_axis(s, top, 1)], 1)
        cand_i = np.concatenate([best_i, ids[top]], 1)
        keep = np.argsort(-cand_s, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, keep, 1), np.take_along_axis(cand_i, keep, 1)
    return best_i


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2  # ru_maxrss is KiB on Linux


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000_000)
    ap.add_argument("--chunk", type=int, default=500_000)
    ap.add_argument("--nlist", type=int, default=1024)
    ap.add_argument("--m", type=int, default=48, help="PQ sub-quantizers (8 bits each)")
    ap.add_argument("--train", type=int, default=100_000)
    ap.add_argument("--clusters", type=int, default=20_000)
    ap.add_argument("--subclusters", type=int, default=1_000_000, help="0: topics with isotropic noise only")
    ap.add_argument("--noise", type=float, default=0.03)
    ap.add_argument("--queries", type=int, default=100)
    ap.add_argument("--nprobe", type=int, nargs="+", default=[8, 32, 128])
    ap.add_argument("--workdir", default="/tmp/kira-bench-ivfpq")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    load = benchmarks.machine_load()
    out = benchmarks.out_path(args.out, __file__)

    import faiss

    from kira.index_build import faiss_index
    from kira.index_build.versions import IndexVersion

    work = Path(args.workdir)
    if work.exists():
        shutil.rmtree(work)
    vdir = work / "v0001.building"
    stages: dict[str, float] = {}
    mix = Mixture(args.clusters, args.subclusters, args.noise)

    t = time.perf_counter()
    trained = faiss.IndexIVFPQ(faiss.IndexFlatIP(DIM), DIM, args.nlist, args.m, 8, faiss.METRIC_INNER_PRODUCT)
    trained.train(mix.draw(args.train, 7))
    stages["train_s"] = time.perf_counter() - t

    t = time.perf_counter()
    index = faiss_index.build_ivf_ondisk(trained, chunks(mix, args.n, args.chunk), vdir / "faiss")
    stages["add_and_merge_s"] = time.perf_counter() - t
    faiss_index.write(index, vdir / "faiss" / "index.faiss")
    del index
    vdir.rename(work / "v0001")  # lists must be found beside index.faiss after a rename
    (work / "v0001" / "manifest.json").write_text("{}")
    rss_build = peak_rss_gb()
    disk = {p.name: p.stat().st_size for p in (work / "v0001" / "faiss").iterdir()}

    index = IndexVersion.open(work / "v0001").load_faiss(gpu=False)
    q = mix.draw(args.queries, 999)
    t = time.perf_counter()
    exact = exact_top(mix, q, args.n, args.chunk, 10)
    stages["exact_search_s"] = time.perf_counter() - t
    rows = []
    for nprobe in args.nprobe:
        index.nprobe = nprobe
        index.search(q[:10], 10)
        t = time.perf_counter()
        _, got = index.search(q, 10)
        dt = time.perf_counter() - t
        recall = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact, strict=True)]))
        top1 = float(np.mean([e[0] in set(a) for a, e in zip(got, exact, strict=True)]))
        rows.append({"nprobe": nprobe, "recall_at_10": round(recall, 3), "top1_in_10": round(top1, 3),
                     "qps": round(len(q) / dt, 1)})
    result = {"n": args.n, "dim": DIM, "nlist": args.nlist, "pq_m": args.m, "chunk": args.chunk,
              "clusters": args.clusters, "subclusters": args.subclusters, "noise": args.noise,
              "ntotal": int(index.ntotal), "ondisk": faiss_index.IVFDATA in disk,
              "disk_bytes": disk, "flat_float32_gb": round(args.n * DIM * 4 / 1e9, 1),
              "peak_rss_gb_build": round(rss_build, 2), "peak_rss_gb": round(peak_rss_gb(), 2),
              "stages_s": {k: round(v, 1) for k, v in stages.items()}, "search": rows, "load_before": load}
    print(f"{args.n:,} vectors x {DIM}-d in IVF{args.nlist},PQ{args.m} with on-disk lists "
          f"({disk.get(faiss_index.IVFDATA, 0) / 1e9:.2f} GB on disk; flat float32 would be "
          f"{result['flat_float32_gb']} GB); load before: {load}")
    print("stages (s): " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    print(f"peak RSS: {result['peak_rss_gb']:.2f} GB (goal < 24)")
    for r in rows:
        print(f"nprobe {r['nprobe']:4d}: recall@10 vs exact {r['recall_at_10']:.3f} (exact top-1 in top-10: "
              f"{r['top1_in_10']:.3f}), {r['qps']:.1f} q/s")
    assert result["ntotal"] == args.n and result["ondisk"]
    if out:
        metrics = [benchmarks.metric("peak RSS GB, on-disk IVF-PQ build + search", result["peak_rss_gb"],
                                     "flat float32 vectors of the same N (GB)", result["flat_float32_gb"],
                                     goal=None),
                   benchmarks.metric("peak RSS GB (goal)", result["peak_rss_gb"], goal="< 24"),
                   benchmarks.metric("vectors indexed", args.n, goal=">= 10000000")]
        metrics += [benchmarks.metric(f"recall@10 vs exact, nprobe {r['nprobe']}", r["recall_at_10"]) for r in rows]
        metrics += [benchmarks.metric(f"exact top-1 in top-10, nprobe {r['nprobe']}", r["top1_in_10"]) for r in rows]
        benchmarks.write(out, benchmarks.record(__file__, metrics, load=load, details=result))
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
