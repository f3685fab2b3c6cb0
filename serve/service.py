"""The one place the HTTP layer meets the rest of kira.

Why a service layer: the API must keep working while retrieval, readers and KB code evolve, and
the web handlers must never reach into other areas' internals. Everything the server needs from
kira — load an index version into something that answers questions, search, find entities, rank
KB tails, ingest/remove a KB, rebuild and publish an index — goes through the functions here.

An :class:`Engine` is everything needed to answer from ONE index version (retrievers + readers);
it is immutable once loaded, so a :class:`Snapshot` holding it can be swapped atomically while
requests still using the old one finish on it.
"""

from __future__ import annotations

import contextlib
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kira.artifacts import kb_artifact_dir
from kira.config import KiraConfig
from kira.errors import KiraError

API_SCHEMA_VERSION = 1  # of /v1/ask and /v1/search bodies; bumped on any incompatible change
SOURCES = ("text", "kb", "tables", "all")
READERS = ("extractive", "fid")
METHODS = ("bm25", "dense", "hybrid")
EMBED_MODELS = ("transe", "transh", "transd")


class NotReady(KiraError):
    """No index version is loaded yet (the server answers 503 until one is)."""


class NotFound(KiraError):
    """A named thing (KB, job, model artifact) does not exist."""


def detach_jvm() -> None:
    """Detach the calling thread from the JVM before it ends (pyjnius crashes on dead attached threads)."""
    import sys

    jnius = sys.modules.get("jnius")
    if jnius is not None:
        with contextlib.suppress(Exception):
            jnius.detach()


# ---- versions -----------------------------------------------------------------------------------
def current_version_name(indexes_dir: Path) -> str | None:
    """The version ``indexes/current`` points at, read without loading anything (cheap, for watching)."""
    from kira.index_build.versions import current_name

    name = current_name(indexes_dir)
    return Path(name).name if name else None


def _jsonable(x: Any) -> Any:
    """Plain JSON types: tuples to lists, numpy scalars to floats, NaN/inf to None."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and callable(x.item) and not isinstance(x, str | bytes):
        try:
            x = x.item()
        except (TypeError, ValueError):
            return str(x)
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, bool | int | float | str):
        return x
    if hasattr(x, "to_dict"):
        return _jsonable(x.to_dict())
    return str(x)


def evidence_dict(ev: Any) -> dict[str, Any]:
    """An Evidence (or its dict) in the API's shape."""
    d = ev.to_dict() if hasattr(ev, "to_dict") else dict(ev)
    return _jsonable({
        "id": d.get("id", ""), "title": d.get("title", ""), "text": d.get("text", ""),
        "score": d.get("score"), "kind": d.get("kind", "passage"), "source": d.get("source", ""),
        "retriever": d.get("retriever", ""), "metadata": d.get("metadata") or {},
    })


def answer_dict(result: Any, version: str) -> dict[str, Any]:
    """A pipeline ``AskResult`` in the API's answer shape.

    ``answer_evidence_id`` names the evidence the answer was read from: ``span`` points into its
    text and ``cells`` into its table, so the web page highlights exactly what was read.
    """
    d = result.to_dict()
    a = d.get("answer") or {}
    read_from = a.get("evidence") or []
    text = a.get("text") or None
    return _jsonable({
        "answer": text,
        "score": d.get("score"),
        "probability": d.get("probability"),
        "no_answer": bool(d.get("no_answer")) or text is None,
        "span": a.get("span"),
        "cells": a.get("cells"),
        "aggregation": a.get("aggregation"),
        "reader": d.get("reader") or a.get("reader") or "",
        "retriever": d.get("retriever") or a.get("retriever") or "",
        "answer_evidence_id": read_from[0]["id"] if read_from else None,
        "evidence": [evidence_dict(e) for e in d.get("evidence") or []],
        "timings": {str(k): float(v) for k, v in (d.get("timings") or {}).items()
                    if k != "batch" and isinstance(v, int | float) and math.isfinite(v)},
        "index_version": version,
        "schema_version": API_SCHEMA_VERSION,
    })


# ---- engines: one loaded index version ----------------------------------------------------------
@dataclass
class Engine:
    """Retrievers + readers for one index version, behind the few calls the server makes."""

    version: str
    pipeline: Any
    retrievers: dict[str, Any] = field(default_factory=dict)

    def ask_batch(self, questions: list[str], k: int, sources: str, reader: str,
                  method: str | None) -> list[dict[str, Any]]:
        """Answer many questions in one call so encoders and readers see a batch."""
        results = self.pipeline.ask_batch(questions, k=k, sources=sources, reader=reader, method=method)
        return [answer_dict(r, self.version) for r in results]

    def search(self, query: str, k: int, method: str) -> list[dict[str, Any]]:
        retriever = self.retrievers.get(method)
        if retriever is None:
            raise KiraError(f"retrieval method {method!r} is not available in index {self.version} "
                            f"(available: {', '.join(sorted(self.retrievers)) or 'none'})")
        return [evidence_dict(e) for e in retriever.search(query, k=k)]

    def warm_up(self) -> None:
        """Touch every lazy part (query encoder, searchers, default reader) before serving, so the
        first requests after a swap do not pay for loading models."""
        for retriever in self.retrievers.values():
            with contextlib.suppress(Exception):
                retriever.search("warm up", k=1)
        with contextlib.suppress(Exception):  # no reader configured: /v1/ask will say so
            self.pipeline.ask_batch(["warm up"], k=1, sources="text", reader="extractive", method=None)


def load_engine(cfg: KiraConfig) -> Engine:
    """The QA pipeline over the version current now, warmed up; NotReady when none is published.

    Old engines are never closed explicitly: requests in flight may still hold them, and they are
    freed when the last reference goes.
    """
    from kira.index_build import versions as V
    from kira.pipeline import QAPipeline

    try:
        version = V.current_version(cfg.indexes_dir)
    except KiraError as e:  # no current version yet: the server is up but not ready
        raise NotReady(str(e)) from e
    pipe = QAPipeline.from_config(cfg, version=version)
    engine = Engine(version=version.name, pipeline=pipe, retrievers=dict(pipe.retrievers))
    engine.warm_up()
    return engine


# ---- store-backed operations --------------------------------------------------------------------
class Workspace:
    """The server's view of the workspace's store (``kira.workspace``'s model).

    Requests read the current index version's read-only snapshot (one per version, shared by
    request threads), so the server never holds the live store and CLI writers never wait for it.
    Admin checks read the live store under the shared workspace lock (or the snapshot while a
    writer is busy); admin jobs write through the exclusive workspace lock, one session per step.
    """

    def __init__(self, cfg: KiraConfig):
        self.cfg = cfg
        self._snapshot: tuple[str, Any] | None = None
        self._lock = threading.Lock()
        self._kb_models: dict[tuple[Path, int], Any] = {}

    @property
    def store(self):
        """The current version's snapshot (reopened when ``current`` moves)."""
        from kira.index_build import versions as V
        from kira.workspace import answering_store

        try:
            version = V.current_version(self.cfg.indexes_dir)
        except KiraError as e:
            raise NotReady(str(e)) from e
        with self._lock:
            if self._snapshot is None or self._snapshot[0] != version.name:
                store = answering_store(self.cfg, version)
                if store is None:
                    raise NotReady(f"no store in {self.cfg.workspace}")
                self._snapshot = (version.name, store)  # the old one closes when unreferenced
            return self._snapshot[1]

    @contextlib.contextmanager
    def answering(self):
        """What a request reads: the current version's snapshot; before any version is published,
        the live store (shared lock, or nothing while a writer is busy)."""
        try:
            store = self.store
        except NotReady:
            with self.reading() as live:
                yield live
            return
        yield store

    def reading(self):
        """The live store for an admin check (shared lock; the snapshot while a writer is busy)."""
        from kira.workspace import open_store

        return open_store(self.cfg)

    def writing(self):
        """The live store for an admin job: waits for the exclusive workspace lock."""
        from kira.workspace import open_store

        return open_store(self.cfg, write=True)

    def close(self) -> None:
        with self._lock:
            if self._snapshot is not None:
                self._snapshot[1].close()
                self._snapshot = None

    # -- reads --
    def find_entities(self, q: str, kb: str | None, limit: int) -> list[dict[str, Any]]:
        with self.answering() as store:
            return [{"id": e.id, "kb": e.kb, "name": e.name, "aliases": list(e.aliases),
                     "description": e.description} for e in store.find_entities(q, kb=kb, limit=limit)]

    def list_kbs(self) -> list[dict[str, Any]]:
        from kira.kb.plugin import list_kbs

        with self.reading() as store:
            return [_jsonable({"name": s["name"], "kind": s["kind"], "version": s["version"],
                               "n_records": s["n_records"], "added_at": s["added_at"]})
                    for s in list_kbs(store)]

    def has_kb(self, name: str) -> bool:
        """True for a KB; ``SourceNameError`` when the name is a text source or a table."""
        from kira.kb.store import require_source_kind

        with self.reading() as store:
            if store.get_source(name) is None:
                return name in set(store.list_kbs())
            require_source_kind(store, name, "kb")
            return True

    def claim_kb_name(self, name: str, paths: list[Path], replace: bool = False) -> None:
        from kira.kb.store import claim_source_name

        with self.reading() as store:
            claim_source_name(store, name, "kb", ";".join(map(str, paths)), replace=replace)

    def link_predict(self, kb: str, head: str, relation: str, k: int) -> dict[str, Any]:
        """Rank tails for (head, relation, ?) with the KB's trained embedding artifact."""
        model_dir = find_kb_model(self.cfg.models_dir, kb)
        model = self._kb_model(model_dir)
        with self.answering() as store:
            head_id = self._entity_id(store, kb, head)
            rel_id = self._relation_id(store, kb, relation)
            ranked = model.rank_tails(head_id, rel_id, k=k)
            names = {e.id: e.name for e in store.get_entities(kb, [t for t, _ in ranked])}
        return {"kb": kb, "model": model_dir.name, "head": head_id, "relation": rel_id,
                "tails": [{"id": t, "name": names.get(t, t), "score": _jsonable(float(s))} for t, s in ranked]}

    def _kb_model(self, model_dir: Path):
        """Load an embedding artifact once per (directory, mtime): retraining replaces it."""
        from kira.kb.embeddings import load_embedder

        key = (model_dir, (model_dir / "kira.json").stat().st_mtime_ns)
        with self._lock:
            model = self._kb_models.get(key)
        if model is None:
            model = load_embedder(model_dir)
            with self._lock:
                self._kb_models = {k: v for k, v in self._kb_models.items() if k[0] != model_dir}
                self._kb_models[key] = model
        return model

    @staticmethod
    def _entity_id(store, kb: str, text: str) -> str:
        if store.get_entities(kb, [text]):
            return text
        found = store.find_entities(text, kb=kb, limit=1)
        if not found:
            raise NotFound(f"no entity {text!r} in knowledge base {kb!r}")
        return found[0].id

    @staticmethod
    def _relation_id(store, kb: str, text: str) -> str:
        rels = store.list_relations(kb)
        for r in rels:
            if text in (r.id, r.name):
                return r.id
        for r in rels:
            if text.lower() in (r.id.lower(), r.name.lower()):
                return r.id
        raise NotFound(f"no relation {text!r} in knowledge base {kb!r}")

    # -- writes (run in the job worker) --
    def add_kb(self, name: str, source_type: str, paths: list[Path], replace: bool = False) -> dict[str, Any]:
        from kira.kb.plugin import add_kb

        with self.writing() as store:
            return _jsonable(add_kb(store, name, source_type, [str(p) for p in paths], replace=replace))

    def embed_kb(self, name: str, model: str, epochs: int = 100) -> dict[str, Any]:
        """Train a TransE/H/D embedding on the KB's train split → ``models/<kb>-<model>`` (link prediction)."""
        from kira.kb.embeddings import KGEmbedder

        with self.reading() as store:
            train = list(store.iter_triples(name, split="train")) or list(store.iter_triples(name))
            entities = [e.id for e in store.iter_entities(name)]
            relations = [r.id for r in store.list_relations(name)]
            learned_from = [store.get_source(name)] if store.get_source(name) else None
        emb = KGEmbedder(model, epochs=epochs, device=self.cfg.device)
        report = emb.fit(train, entities=entities, relations=relations)
        target = kb_artifact_dir(self.cfg.models_dir, name, model)
        emb.save(target, extra={"kb": name}, sources=learned_from)
        return _jsonable({"artifact": target.name, "seconds": report.get("seconds"),
                          "triples_per_s": report.get("triples_per_s")})

    def remove_kb(self, name: str) -> None:
        from kira.kb.plugin import remove_kb

        with self.writing() as store:
            remove_kb(store, name, models_dir=self.cfg.models_dir)

    def build_and_publish(self, full: bool = False) -> str:
        """Build a new index version from every store passage and publish it; returns its name."""
        from kira.index_build.incremental import update_index

        with self.writing() as store:  # only new or changed passages are encoded; verified and published
            return update_index(self.cfg, store, full=full, progress=False).name


def find_kb_model(models_dir: Path, kb: str) -> Path:
    """The newest embedding artifact for a KB: ``models/<kb>-<model>`` as ``kira kb embed`` saves it."""
    from kira.artifacts import kb_artifact_dirs

    candidates = [p for p in kb_artifact_dirs(models_dir, kb) if p.name[len(kb) + 1:] in (*EMBED_MODELS, "kepler")]
    if not candidates:
        raise NotFound(f"no trained embedding for knowledge base {kb!r} under {models_dir} "
                       f"(train one with `kira kb embed --kb {kb}`)")
    return max(candidates, key=lambda p: p.stat().st_mtime)


# ---- paths a client may name --------------------------------------------------------------------
def confine_path(path: str, allowed_dirs: list[str]) -> Path:
    """Resolve ``path`` (symlinks included) and insist it lies inside one of ``allowed_dirs``.

    Why resolve first: ``allowed/../../etc/passwd`` and a symlink inside an allowed directory that
    points out of it must both be refused, so the check runs on the real location.
    """
    if not allowed_dirs:
        raise PermissionError("server-side paths are disabled (configure serve.allowed_kb_dirs)")
    if not path or "\x00" in path:
        raise PermissionError("empty or invalid path")
    real = Path(path).expanduser().resolve(strict=False)
    for d in allowed_dirs:
        root = Path(d).expanduser().resolve(strict=False)
        if real == root or real.is_relative_to(root):
            if not real.exists():
                raise FileNotFoundError(f"{path}: no such file or directory")
            return real
    raise PermissionError(f"{path}: outside the allowed directories")


