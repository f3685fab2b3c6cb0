"""Dense retrieval (DPR): inner product between a question vector and a version's passage vectors.

The passage vectors live in the version's FAISS index (built with the manifest's encoder). The
question encoder is, in order: the one passed in, the config's ``index.query_encoder``, the
manifest's ``query_encoder``, the ``query_encoder`` recorded in the passage encoder's ``kira.json``
(what ``kira retriever train --separate`` writes, so an index built with the trained passage
encoder finds its question encoder by itself), else the passage encoder (shared, as with MiniLM).
Passage text comes from the version's document store (memory-mapped; Lucene for older versions),
so hits match the vectors they scored.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kira.errors import IndexError_
from kira.retriever.docstore import evidence_from_doc, open_docstore
from kira.schema import BaseRetriever, Evidence


def _open_version(version: Any):
    if isinstance(version, (str, os.PathLike)):
        from kira.index_build.versions import IndexVersion

        return IndexVersion.open(version)
    return version


def manifest_encoder(manifest: dict) -> dict[str, Any]:
    """The encoder section of a manifest, whichever layout the build wrote (nested or flat)."""
    enc = manifest.get("encoder")
    if isinstance(enc, dict):
        return dict(enc)
    dense = manifest.get("dense")
    if isinstance(dense, dict) and dense.get("encoder"):
        out = dict(dense)
        if isinstance(out["encoder"], dict):
            out = {**out, **out.pop("encoder")}
        return out
    out = {"spec": enc} if enc else {}
    for key in ("pooling", "normalize", "dim", "query_encoder", "max_length"):
        if key in manifest:
            out[key] = manifest[key]
    return out


def resolve_query_encoder_spec(manifest: dict, explicit: str | None = None,
                               config_spec: str | None = None) -> tuple[str, bool]:
    """``(spec, shared)``: which encoder turns questions into vectors for this version."""
    enc = manifest_encoder(manifest)
    passage_spec = enc.get("spec") or enc.get("name") or "minilm-l6"
    for cand in (explicit, config_spec, enc.get("query_encoder")):
        if cand:
            return str(cand), str(cand) == str(passage_spec)
    from kira.plm import zoo

    r = zoo.resolve(passage_spec)
    if r.path is not None:
        q = zoo.artifact_config(r.path).get("query_encoder")
        if q:
            qp = Path(q)
            if not qp.is_absolute():
                qp = (r.path / qp).resolve()
            return str(qp), False
    return str(passage_spec), True


class DenseRetriever(BaseRetriever):
    """DPR-style dense retriever over one index version (GPU FAISS when one is present)."""

    name = "dense"

    def __init__(self, version: Any, query_encoder: Any = None, k: int = 100, batch_size: int = 64,
                 device: str = "auto", bf16: bool = True, gpu: bool | None = None,
                 config_query_encoder: str | None = None, threads: int | None = None, doc_searcher=None):
        from kira.plm.encoder import TextEncoder

        version = _open_version(version)
        self.version_name = getattr(version, "name", "")
        self.manifest = dict(getattr(version, "manifest", {}) or {})
        self.k, self.batch_size = k, batch_size
        self.threads = threads or os.cpu_count() or 1
        self.index = version.load_faiss(gpu)
        self.docids = version.docids()
        enc = manifest_encoder(self.manifest)
        if query_encoder is None or isinstance(query_encoder, (str, os.PathLike)):
            spec, shared = resolve_query_encoder_spec(self.manifest, query_encoder and str(query_encoder),
                                                      config_query_encoder)
            kw: dict[str, Any] = {"device": device, "bf16": bf16}
            if shared:  # encode questions exactly as passages were encoded
                kw.update({k_: enc[k_] for k_ in ("pooling", "normalize", "max_length") if k_ in enc})
            query_encoder = TextEncoder(spec, **kw)
        self.encoder = query_encoder
        if int(self.encoder.dim) != int(self.index.d):
            raise IndexError_(f"{getattr(version, 'path', version)}: query encoder "
                              f"{getattr(self.encoder, 'spec', self.encoder)!r} gives {self.encoder.dim}-d vectors "
                              f"but the FAISS index holds {self.index.d}-d vectors")
        self.docs = open_docstore(version.path, self.docids, doc_searcher)
        self._rows: dict[str, int] | None = None  # passage id -> FAISS id, without a memory-mapped docstore

    def encode(self, queries: Sequence[str]) -> np.ndarray:
        """Question vectors, float32 contiguous, batched."""
        return np.ascontiguousarray(self.encoder.encode(list(queries), batch_size=self.batch_size), dtype=np.float32)

    def search(self, query: str, k: int | None = None) -> list[Evidence]:
        """Top-``k`` (default 100) passages by inner product; an empty query returns []."""
        if not query or not query.strip():
            return []
        return self.search_vectors(self.encode([query]), k)[0]

    def batch_search(self, queries: Sequence[str], k: int | None = None, threads: int | None = None) -> list[list[Evidence]]:
        """One list per query; all questions are encoded in batches, then searched in one FAISS call."""
        live = [i for i, q in enumerate(queries) if q and q.strip()]
        out: list[list[Evidence]] = [[] for _ in queries]
        if live:
            res = self.search_vectors(self.encode([queries[i] for i in live]), k, threads)
            for i, r in zip(live, res, strict=True):
                out[i] = r
        return out

    def search_ids(self, vectors: np.ndarray, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Raw FAISS ``(scores, ids)`` for pre-encoded question vectors."""
        k = int(k or self.k)
        k_eff = max(0, min(k, int(self.index.ntotal)))
        q = np.ascontiguousarray(vectors, dtype=np.float32)
        if k_eff == 0 or len(q) == 0:
            return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
        return self.index.search(q, k_eff)

    def search_hits(self, vectors: np.ndarray, k: int | None = None) -> list[list[tuple[str, float]]]:
        """``(passage id, score)`` per hit, no text: what fusion needs before it picks the final k."""
        scores, ids = self.search_ids(vectors, k)
        docids, n = self.docids, len(self.docids)
        return [[(docids[i], s) for s, i in zip(srow, irow, strict=True) if 0 <= i < n and docids[i]]
                for srow, irow in zip(scores.tolist(), ids.tolist(), strict=True)]

    def evidence(self, rows: list[list[tuple[str, float]]], threads: int | None = None) -> list[list[Evidence]]:
        """Hits → ``Evidence`` with text from the version's doc store (one fetch per unique id)."""
        docs = self.docs.get_many([p for row in rows for p, _ in row], threads or self.threads)
        return [self._ranked_evidence(row, [docs.get(pid) for pid, _ in row]) for row in rows]

    def search_vectors(self, vectors: np.ndarray, k: int | None = None, threads: int | None = None) -> list[list[Evidence]]:
        """Search pre-encoded question vectors and assemble evidence from the version's doc store.
        With a memory-mapped doc store, FAISS ids are its rows: no id lookups at all."""
        at_rows = getattr(self.docs, "at_rows", None)
        if at_rows is None:
            return self.evidence(self.search_hits(vectors, k), threads)
        scores, ids = self.search_ids(vectors, k)
        docids, out = self.docids, []
        for srow, irow in zip(scores.tolist(), ids.tolist(), strict=True):
            live = [(s, i) for s, i in zip(srow, irow, strict=True) if 0 <= i < len(docids) and docids[i]]
            out.append(self._ranked_evidence([(docids[i], s) for s, i in live], at_rows([i for _, i in live])))
        return out

    def _ranked_evidence(self, hits: list[tuple[str, float]], docs: list[dict[str, Any] | None]) -> list[Evidence]:
        """One query's ``(passage id, score)`` hits and their stored docs → ranked ``Evidence``."""
        out = []
        for r, ((pid, s), d) in enumerate(zip(hits, docs, strict=True), start=1):
            if d is None:  # a vector whose stored doc is gone: the version is inconsistent
                raise IndexError_(f"index version {self.version_name}: passage {pid!r} has a vector "
                                  f"but no stored document")
            out.append(evidence_from_doc(d, s, self.name, r, self.version_name))
        return out

    def passage_vectors(self, ids: Sequence[str], unit: bool = True) -> dict[str, np.ndarray]:
        """Vectors of the passages ``ids`` that this version holds (unit length unless ``unit`` is
        False), read back from the index rather than encoded again; ``{}`` when the index cannot give
        vectors back (IVF without a direct map)."""
        rows = getattr(self.docs, "rows", None)
        if rows is None:
            if self._rows is None:
                self._rows = {pid: i for i, pid in enumerate(self.docids) if pid}
            rows = self._rows
        out: dict[str, np.ndarray] = {}
        for pid in ids:
            i = rows.get(pid)
            if i is None:
                continue
            try:
                v = np.asarray(self.index.reconstruct(int(i)), dtype=np.float32)
            except RuntimeError:
                return {}
            norm = float(np.linalg.norm(v)) if unit else 1.0
            if norm > 0:
                out[pid] = v / norm
        return out

    def close(self) -> None:
        self.docs.close()
