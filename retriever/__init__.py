"""kira.retriever: BM25 (Lucene), dense (DPR over FAISS) and hybrid retrieval over an index version.

``open_retrievers(version, cfg)`` is the one entry point other areas use; every retriever returned
satisfies ``kira.schema.Retriever`` and returns ``Evidence`` with provenance.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["open_retrievers", "resolve_version"]


def resolve_version(path: str | os.PathLike | Any):
    """An ``IndexVersion`` from a version dir, an ``indexes/`` dir or a workspace dir (its current)."""
    from kira.errors import IndexError_
    from kira.index_build.versions import MANIFEST, IndexVersion, current_version

    if not isinstance(path, (str, os.PathLike)):
        return path
    p = Path(path)
    if (p / MANIFEST).exists():
        return IndexVersion.open(p)
    if (p / "current").exists() or (p / "current").is_symlink():
        return current_version(p)
    if (p / "indexes").is_dir():
        return current_version(p / "indexes")
    raise IndexError_(f"{p}: neither an index version, an indexes directory nor a workspace with indexes/")


def open_retrievers(version: Any, cfg: Any = None) -> dict[str, Any]:
    """``{"bm25", "dense", "hybrid"}`` over one version (dense and hybrid only if it has vectors).

    BM25 k1/b default to what the version was built with; fusion settings come from
    ``cfg.retriever``; the question encoder from ``cfg.index.query_encoder`` or the manifest.
    """
    from kira.config import KiraConfig
    from kira.retriever.bm25 import BM25Retriever
    from kira.retriever.dense import DenseRetriever
    from kira.retriever.hybrid import HybridRetriever

    cfg = cfg or KiraConfig()
    version = resolve_version(version)
    out: dict[str, Any] = {"bm25": BM25Retriever(version)}
    has_dense = getattr(version, "has_dense", True)
    if has_dense:
        dense = DenseRetriever(version, k=cfg.retriever.k, batch_size=cfg.index.batch_size,
                               device=cfg.device, bf16=cfg.bf16,
                               config_query_encoder=cfg.index.query_encoder,
                               doc_searcher=out["bm25"].searcher)
        out["dense"] = dense
        out["hybrid"] = HybridRetriever(out["bm25"], dense, method=cfg.retriever.fusion,
                                        alpha=cfg.retriever.alpha, rrf_k=cfg.retriever.rrf_k,
                                        depth=cfg.retriever.k)
    return out
