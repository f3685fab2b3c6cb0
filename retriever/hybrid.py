"""Hybrid retrieval: fuse a sparse (BM25) and a dense ranking.

Two fusions:

* **RRF** (Cormack et al. 2009): ``score(d) = Σ_lists 1 / (rrf_k + rank(d))``, rank 1-based; a list
  that misses ``d`` contributes nothing. Needs no score calibration.
* **Linear** (Pyserini's ``HybridSearcher``): each list's scores min-max normalised, documents missing
  from one list take that list's *minimum* score, then ``alpha * sparse + dense`` (or
  ``sparse + alpha * dense`` with ``weight_on_dense``). Pyserini centres the normalised scores
  (subtracts 0.5); that shifts every fused score by the same constant, so the ranking is identical.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from kira.retriever.fusion import linear_scores, rank, rrf_scores
from kira.schema import BaseRetriever, Evidence

Hit = Evidence | tuple[str, float]


def _pairs(hits: Sequence[Hit]) -> list[tuple[str, float, Evidence | None]]:
    return [(h.id, h.score, h) if isinstance(h, Evidence) else (h[0], float(h[1]), None) for h in hits]


def fuse(sparse: Sequence[Hit], dense: Sequence[Hit], k: int, method: str = "rrf", alpha: float = 0.5,
         rrf_k: int = 60, normalize: bool = True, weight_on_dense: bool = False,
         resolve: Callable[[list[str]], dict[str, Evidence]] | None = None) -> list[Evidence]:
    """Fuse two ranked lists into one (``retriever="hybrid"``), recording each side's rank and score.

    A list may hold bare ``(id, score)`` hits; ``resolve(ids)`` then supplies ``Evidence`` for the
    fused top-k ids no list carried as ``Evidence`` — so dense text is fetched for k passages, not
    for every candidate.
    """
    sp, dp = _pairs(sparse), _pairs(dense)
    if method == "rrf":
        scores = rrf_scores([[i for i, _, _ in sp], [i for i, _, _ in dp]], rrf_k)
    elif method == "linear":
        scores = linear_scores({i: s for i, s, _ in sp}, {i: s for i, s, _ in dp}, alpha, normalize, weight_on_dense)
    else:
        raise ValueError(f"fusion method must be 'rrf' or 'linear', got {method!r}")
    by_id: dict[str, Evidence] = {}
    side: dict[str, dict] = {}
    for name, hits in (("bm25", sp), ("dense", dp)):
        for r, (i, s, e) in enumerate(hits, start=1):
            if e is not None:
                by_id.setdefault(i, e)
            side.setdefault(i, {}).setdefault(name, (r, s))
    top = rank(scores, k)
    need = [i for i, _ in top if i not in by_id]
    if need:
        if resolve is None:
            raise ValueError(f"fused hits {need[:3]} carry no Evidence and no resolve() was given")
        by_id.update(resolve(need))
    out = []
    for r, (doc, score) in enumerate(top, start=1):
        base = by_id[doc]
        meta = dict(base.metadata)
        meta["rank"] = r
        meta["fusion"] = method
        for name, (sr, ss) in side[doc].items():
            meta[f"{name}_rank"], meta[f"{name}_score"] = sr, ss
        out.append(replace(base, score=float(score), retriever="hybrid", metadata=meta))
    return out


class HybridRetriever(BaseRetriever):
    """BM25 + dense, fused. Each side is searched to ``depth`` (≥ k) before fusing."""

    name = "hybrid"

    def __init__(self, sparse, dense, method: str = "rrf", alpha: float = 0.5, rrf_k: int = 60,
                 depth: int = 100, normalize: bool = True, weight_on_dense: bool = False):
        if method not in ("rrf", "linear"):
            raise ValueError(f"fusion method must be 'rrf' or 'linear', got {method!r}")
        self.sparse, self.dense = sparse, dense
        self.method, self.alpha, self.rrf_k, self.depth = method, alpha, rrf_k, depth
        self.normalize, self.weight_on_dense = normalize, weight_on_dense

    def _fuse(self, s: list[Evidence], d: list, k: int) -> list[Evidence]:
        return fuse(s, d, k, self.method, self.alpha, self.rrf_k, self.normalize, self.weight_on_dense,
                    resolve=self._resolve)

    def _resolve(self, ids: list[str]) -> dict[str, Evidence]:
        """Evidence for dense-only ids in the fused top-k (text from the dense side's doc store)."""
        if hasattr(self.dense, "evidence"):
            return {e.id: e for e in self.dense.evidence([[(i, 0.0) for i in ids]])[0]}
        raise ValueError("dense retriever returned bare hits but cannot resolve them")

    def _dense_hits(self, queries: Sequence[str], depth: int) -> list[list]:
        """Dense candidates as bare (id, score) when the retriever supports it (no text fetched)."""
        if hasattr(self.dense, "search_hits") and hasattr(self.dense, "encode"):
            return self.dense.search_hits(self.dense.encode(list(queries)), depth)
        return self.dense.batch_search(list(queries), depth)

    def search(self, query: str, k: int = 100) -> list[Evidence]:
        if k <= 0 or not query or not query.strip():
            return []
        depth = max(k, self.depth)
        return self._fuse(self.sparse.search(query, depth), self._dense_hits([query], depth)[0], k)

    def batch_search(self, queries: Sequence[str], k: int = 100, threads: int | None = None) -> list[list[Evidence]]:
        if k <= 0:
            return [[] for _ in queries]
        depth = max(k, self.depth)
        live = [i for i, q in enumerate(queries) if q and q.strip()]
        out: list[list[Evidence]] = [[] for _ in queries]
        if not live:
            return out
        qs = [queries[i] for i in live]
        sparse = self.sparse.batch_search(qs, depth, threads=threads)
        dense = self._dense_hits(qs, depth)
        for i, s, d in zip(live, sparse, dense, strict=True):
            out[i] = self._fuse(s, d, k)
        return out
