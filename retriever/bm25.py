"""BM25 over a version's Lucene index, through pyserini's ``LuceneSearcher`` (Anserini).

``batch_search`` hands all queries to Anserini's multi-threaded batch search in one JNI call,
which is where the throughput comes from. A hit's text comes from the version's doc store
(``retriever.docstore.open_docstore``): the memory-mapped docstore (two cheap field reads per hit:
id and score), or, for versions built before docstores, Lucene's stored raw JSON by id.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from kira.errors import IndexError_
from kira.retriever.docstore import LuceneDocStore, evidence_from_doc, open_docstore, open_searcher
from kira.schema import BaseRetriever, Evidence


def _version_parts(version: Any) -> tuple[Path, str, dict]:
    """(lucene_dir, version name, manifest) from an ``IndexVersion`` or a version directory."""
    if isinstance(version, (str, os.PathLike)):
        from kira.index_build.versions import IndexVersion

        version = IndexVersion.open(version)
    return Path(version.lucene_dir), getattr(version, "name", ""), dict(getattr(version, "manifest", {}) or {})


class BM25Retriever(BaseRetriever):
    """Lucene BM25 with configurable ``k1``/``b`` (default: the values the version was built with)."""

    name = "bm25"

    def __init__(self, version: Any, k1: float | None = None, b: float | None = None,
                 threads: int | None = None):
        lucene_dir, self.version_name, manifest = _version_parts(version)
        bm25 = manifest.get("bm25") or {}
        self.k1 = float(k1 if k1 is not None else bm25.get("k1", manifest.get("bm25_k1", 0.9)))
        self.b = float(b if b is not None else bm25.get("b", manifest.get("bm25_b", 0.4)))
        self.threads = threads or os.cpu_count() or 1
        self.searcher = open_searcher(lucene_dir)
        self.searcher.set_bm25(self.k1, self.b)
        self.docs = open_docstore(lucene_dir.parent, searcher=self.searcher)

    def _evidence(self, hits, k: int) -> list[Evidence]:
        name, version = self.name, self.version_name
        pairs = [(h.docid, h.score) for h in hits[:k]]
        docs = self.docs.get_many([p for p, _ in pairs])
        missing = [pid for pid, _ in pairs if pid not in docs]
        if missing and not isinstance(self.docs, LuceneDocStore):
            # a Lucene doc without a docstore row: the version is inconsistent
            raise IndexError_(f"index version {version}: passage {missing[0]!r} is in Lucene but not in its docstore")
        return [evidence_from_doc(docs.get(pid) or {"id": pid}, s, name, rank, version)
                for rank, (pid, s) in enumerate(pairs, start=1)]

    def search(self, query: str, k: int = 100) -> list[Evidence]:
        """Top-``k`` passages for ``query``; an empty or all-stopword query returns []."""
        if k <= 0 or not query or not query.strip():
            return []
        return self._evidence(self.searcher.object.search(query, int(k)), k)

    def batch_search(self, queries: Sequence[str], k: int = 100, threads: int | None = None) -> list[list[Evidence]]:
        """One result list per query, in input order (Anserini searches them on ``threads`` threads)."""
        from kira.jvm import java_class as autoclass

        if k <= 0:
            return [[] for _ in queries]
        ArrayList = autoclass("java.util.ArrayList")
        qs, ids = ArrayList(), ArrayList()
        live = [i for i, q in enumerate(queries) if q and q.strip()]
        for i in live:
            qs.add(queries[i])
            ids.add(str(i))
        out: list[list[Evidence]] = [[] for _ in queries]
        if not live:
            return out
        results = self.searcher.object.batch_search(qs, ids, int(k), int(threads or self.threads))
        for e in results.entrySet().toArray():
            out[int(e.getKey())] = self._evidence(e.getValue(), k)
        return out

    def close(self) -> None:
        if self.docs is not None:
            self.docs.close()
            self.docs = None
        if self.searcher is not None:
            self.searcher.close()
            self.searcher = None
