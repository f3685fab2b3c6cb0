"""A version's document store: passage id → stored raw JSON → ``Evidence``.

Index build writes each passage's raw JSON (``id``, ``title``, ``text``, ``contents``, ``source``,
``kind``, ``metadata``) into Lucene and into the memory-mapped ``docstore/`` beside it
(``index_build.docstore``), so a version is self-contained: hits take their text from the same
version they were scored in, never from the live DuckDB store (which may have moved on).
``open_docstore`` reads the memory-mapped file when the version has one, else Lucene.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

from kira.errors import IndexError_
from kira.index_build.docstore import loads
from kira.schema import Evidence


def open_searcher(lucene_dir: str | os.PathLike):
    """A pyserini ``LuceneSearcher`` on ``lucene_dir`` (Java set up through ``kira.jvm``)."""
    from kira.jvm import import_pyserini

    p = Path(lucene_dir)
    if not p.is_dir():
        raise IndexError_(f"{p}: no Lucene index here (version built with --no-bm25 or incomplete)")
    LuceneSearcher, _ = import_pyserini()
    return LuceneSearcher(str(p))


def parse_raw(raw: str | None, docid: str) -> dict[str, Any]:
    """The stored JSON of a passage; a doc indexed without raw JSON degrades to id-only."""
    if not raw:
        return {"id": docid}
    try:
        doc = loads(raw)
    except json.JSONDecodeError:  # not JSON even to the standard library (``loads`` falls back to it)
        return {"id": docid, "text": raw}
    return doc if isinstance(doc, dict) else {"id": docid, "text": str(doc)}


_KINDS = frozenset(("passage", "kb_fact", "table"))


def evidence_from_doc(doc: dict[str, Any], score: float, retriever: str, rank: int,
                      version: str = "") -> Evidence:
    """Build ``Evidence`` from a stored doc, keeping its provenance (source, metadata, version).
    On the per-hit path (~100 hits a question at k=100), so written for speed: one ``get`` per field."""
    meta = doc.get("metadata")
    meta = {**meta, "rank": rank} if meta else {"rank": rank}
    if version:
        meta["index_version"] = version
    text = doc.get("text")
    if text is None:
        text = doc.get("contents")
    kind = doc.get("kind")
    return Evidence(str(doc.get("id", "")), doc.get("title") or "", text or "", float(score),
                    kind if kind in _KINDS else "passage", doc.get("source") or "", retriever, meta)


def open_docstore(version_dir: str | os.PathLike, docids: list[str] | None = None, searcher=None):
    """``MmapDocStore`` when the version has a docstore, else ``LuceneDocStore`` (older versions);
    both answer ``get_many(ids) -> {id: doc}``."""
    from kira.index_build import docstore
    from kira.index_build.versions import DOCIDS, read_docids

    if docstore.exists(version_dir):
        if docids is None:
            docids = read_docids(Path(version_dir) / "faiss" / DOCIDS)
        return docstore.MmapDocStore(version_dir, docids)
    return LuceneDocStore(searcher or open_searcher(Path(version_dir) / "lucene"))


class LuceneDocStore:
    """Fetch stored docs by passage id, with a bounded LRU of parsed docs.

    The cache matters for dense retrieval: popular passages recur across queries, and a Lucene
    id lookup plus JSON parse costs more than the FAISS search of one query on small indexes.
    """

    def __init__(self, searcher, cache_size: int = 50_000):
        self.searcher = searcher
        self.cache_size = cache_size
        self._cache: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def get_many(self, ids: list[str], threads: int = 1) -> dict[str, dict[str, Any]]:
        """Docs for ``ids`` (missing ids are absent from the result)."""
        out: dict[str, dict[str, Any]] = {}
        missing: list[str] = []
        for i in ids:
            d = self._cache.get(i)
            if d is None:
                missing.append(i)
            else:
                self._cache.move_to_end(i)
                out[i] = d
        if not missing:
            return out
        jsearcher = self.searcher.object
        for i in dict.fromkeys(missing):
            # one JNI call returning the stored string; measured faster than batch_get_docs, whose
            # Map/Document proxies cost more on the Python side than its Java threads save
            raw = jsearcher.doc_raw(i)
            if raw is not None:
                out[i] = self._put(i, parse_raw(raw, i))
        return out

    def close(self) -> None:
        """The searcher belongs to whoever opened it."""

    def _put(self, key: str, doc: dict[str, Any]) -> dict[str, Any]:
        if self.cache_size > 0:
            self._cache[key] = doc
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return doc
