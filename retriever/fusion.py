"""Rank fusion, in one place: hybrid retrieval (sparse + dense), the pipeline (text + KB facts +
graph expansion) and graph merging all fuse through these functions.

* **RRF** (Cormack et al. 2009): ``score(d) = Σ_lists w_list / (rrf_k + rank(d))``, rank 1-based; a
  list that misses ``d`` contributes nothing. Needs no score calibration.
* **Linear** (Pyserini's ``HybridSearcher``): see :func:`linear_scores`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from kira.schema import Evidence


def rrf_scores(rankings: Sequence[Sequence[str]], rrf_k: int = 60,
               weights: Sequence[float] | None = None) -> dict[str, float]:
    """Reciprocal rank fusion over ranked id lists (each list weighted, 1.0 by default)."""
    scores: dict[str, float] = {}
    for i, ranking in enumerate(rankings):
        w = 1.0 if weights is None else float(weights[i])
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + w / (rrf_k + rank)
    return scores


def _minmax(scores: dict[str, float]) -> tuple[float, float]:
    if not scores:
        return 0.0, 1.0  # pyserini's defaults for an empty list
    return min(scores.values()), max(scores.values())


def linear_scores(sparse: dict[str, float], dense: dict[str, float], alpha: float = 0.5,
                  normalize: bool = True, weight_on_dense: bool = False) -> dict[str, float]:
    """Pyserini-style linear fusion of ``{docid: score}`` maps (see module docstring)."""
    s_min, s_max = _minmax(sparse)
    d_min, d_max = _minmax(dense)
    s_rng = (s_max - s_min) or 1.0  # a single-score list normalises to 0 instead of dividing by 0
    d_rng = (d_max - d_min) or 1.0
    out: dict[str, float] = {}
    for doc in dict.fromkeys([*sparse, *dense]):
        s = sparse.get(doc, s_min)
        d = dense.get(doc, d_min)
        if normalize:
            s = (s - s_min) / s_rng
            d = (d - d_min) / d_rng
        out[doc] = s + alpha * d if weight_on_dense else alpha * s + d
    return out


def rank(scores: dict[str, float], k: int) -> list[tuple[str, float]]:
    """Top-``k`` by score; ties keep first-seen order (stable), so fusion is deterministic."""
    return sorted(scores.items(), key=lambda kv: -kv[1])[:k]




def fuse_evidence(lists: Sequence[Sequence[Evidence]], k: int, rrf_k: int = 60,
                  weights: Sequence[float] | None = None) -> list[Evidence]:
    """RRF over evidence lists from different retrievers: the top ``k``, ties broken by id. Each
    item keeps its own ``retriever`` and provenance; ``score`` becomes the fused score and the
    retriever's own score is kept as ``metadata["retriever_score"]``."""
    by_id: dict[str, Evidence] = {}
    for hits in lists:
        for e in hits:
            by_id.setdefault(e.id, e)
    scores = rrf_scores([[e.id for e in hits] for hits in lists], rrf_k, weights)
    ranked = sorted(scores, key=lambda i: (-scores[i], i))[:k]
    return [replace(by_id[i], score=scores[i],
                    metadata={**by_id[i].metadata, "fused_score": scores[i],
                              "retriever_score": by_id[i].metadata.get("retriever_score", by_id[i].score)})
            for i in ranked]
