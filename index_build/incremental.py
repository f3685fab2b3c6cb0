"""Change a published version without a full rebuild: add, delete, compact.

Each operation stages a NEW version (``vNNNN.building``) from the old one: the Lucene directory is
hard-linked (Lucene never rewrites a file, so this is copy-on-write), then edited in place with
Lucene's IndexWriter; the FAISS index is loaded, edited with ``add_with_ids`` / ``remove_ids`` and
written anew. The staged version goes through the same verification and atomic publish as a build,
so readers of the old version are never disturbed and a failed edit never becomes current.

FAISS ids are never reused: added passages get ids after the highest ever assigned, deleted ids
leave an empty line in ``docids.txt``. ``compact`` renumbers densely and merges Lucene segments.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from kira.config import KiraConfig
from kira.errors import IndexError_
from kira.index_build import docstore, faiss_index, lucene
from kira.index_build.build import finalize, ids_checksum, load_encoder, source_checksums
from kira.index_build.shards import passage_contents
from kira.index_build.versions import (
    DOCIDS,
    FAISS_FILE,
    IndexVersion,
    current_version,
    next_version_number,
    version_name,
    write_docids,
    writer_lock,
)
from kira.schema import Passage

log = logging.getLogger("kira.index_build")


def _stage(version: IndexVersion) -> Path:
    indexes_dir = version.path.parent
    build = indexes_dir / f"{version_name(next_version_number(indexes_dir))}.building"
    build.mkdir()
    lucene.link_copy(version.lucene_dir, build / "lucene")
    (build / "faiss").mkdir()
    return build


def _derived_manifest(version: IndexVersion, build: Path, docids: list[str], *, op: str, store,
                      index=None, stats: dict[str, Any]) -> dict[str, Any]:
    m = {k: v for k, v in version.manifest.items() if k != "verify"}
    live = [d for d in docids if d]
    m.update(version=build.name.split(".")[0], created_at=datetime.now(UTC).isoformat(timespec="seconds"),
             op=op, parent=version.name, passages=len(live), passage_ids_sha256=ids_checksum(live),
             stats=stats)
    m["lucene"] = {**m.get("lucene", {}), "docs": len(live)}
    if store is not None:
        m["sources"] = source_checksums(store)
    if index is not None and m.get("faiss"):
        m["faiss"] = {**m["faiss"], "ntotal": int(index.ntotal)}
    return m


def _docstore(version: IndexVersion, build: Path, docids: list[str], new_raws: dict[str, str]) -> None:
    """The new version's docstore: rows of added passages from ``new_raws``, the rest copied from the
    parent's docstore (or read from the parent's Lucene when the parent predates docstores)."""
    if docstore.exists(version.path):
        docstore.derive(version.path, build, docids, new_raws, version.docids())
        return
    s = lucene.searcher(version.lucene_dir)
    try:
        docstore.derive(version.path, build, docids, new_raws, version.docids(),
                        lucene_raw=lambda pid: s.object.doc_raw(pid))
    finally:
        s.close()


def _finish(version: IndexVersion, build: Path, docids: list[str], index, manifest: dict[str, Any], *,
            store, encoder, expected: int | None, keep_versions: int,
            new_raws: dict[str, str] | None = None) -> IndexVersion:
    write_docids(build / "faiss" / DOCIDS, docids)
    _docstore(version, build, docids, new_raws or {})
    if index is not None:
        faiss_index.write(index, build / "faiss" / FAISS_FILE)
    return finalize(version.path.parent, build, manifest, store, encoder=encoder, expected=expected,
                    keep_versions=keep_versions)


def _abort(build: Path) -> None:
    import shutil

    if build.exists():
        shutil.rmtree(build)


def fingerprint(p: Passage) -> str:
    """What a passage's index entries depend on (Lucene stores all of it; FAISS the title and text)."""
    import hashlib
    import json

    return hashlib.sha1(json.dumps([p.title, p.text, p.source, p.metadata], sort_keys=True,
                                   ensure_ascii=False).encode()).hexdigest()


def add_passages(version: IndexVersion, passages: Iterable[Passage], *, cfg: KiraConfig | None = None,
                 store=None, encoder=None, expected: int | None = None,
                 delete: Iterable[str] = (), op: str = "add") -> IndexVersion:
    """A new published version = ``version`` − ``delete`` + ``passages`` (same id → replaced), in one
    staged version. Only the added passages are encoded.

    ``store`` (optional) refreshes the manifest's source checksums and the version's store
    snapshot; ``expected`` (optional) is the passage count the new version must hold.
    """
    cfg = cfg or KiraConfig()
    passages = list(passages)
    ids = [p.id for p in passages]
    if len(set(ids)) != len(ids):
        raise IndexError_("add_passages: duplicate ids in the passages to add")
    t0 = time.perf_counter()
    with writer_lock(version.path.parent):
        docids = version.docids()
        pos = {d: i for i, d in enumerate(docids) if d}
        adding = set(ids)
        removed = [i for i in dict.fromkeys(delete) if i in pos and i not in adding]
        replaced = [i for i in ids if i in pos]
        build = _stage(version)
        try:
            if replaced or removed:
                lucene.delete_ids(build / "lucene", replaced + removed)
            new_raws = {p.id: lucene.raw_doc(p) for p in passages}
            w = lucene.LuceneWriter(build / "lucene", append=True)
            try:
                w.add_raw(list(new_raws.values()))
            finally:
                w.close()
            index = None
            if version.manifest.get("faiss"):
                index = version.load_faiss(gpu=False)
                if replaced or removed:
                    index = faiss_index.remove_ids(index, np.array([pos[r] for r in replaced + removed]))
                if passages:
                    if encoder is None:
                        encoder = load_encoder(version.manifest["encoder"], cfg)
                    vecs = encoder.encode([passage_contents(p.title, p.text) for p in passages],
                                          batch_size=cfg.index.batch_size)
                    new_ids = np.arange(len(docids), len(docids) + len(passages), dtype=np.int64)
                    index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), new_ids)
            for r in replaced + removed:
                docids[pos[r]] = ""
            docids.extend(ids)
            stats = {"added": len(passages), "replaced": len(replaced), "deleted": len(removed),
                     "seconds": round(time.perf_counter() - t0, 3)}
            manifest = _derived_manifest(version, build, docids, op=op, store=store, index=index, stats=stats)
        except BaseException:
            _abort(build)
            raise
        return _finish(version, build, docids, index, manifest, store=store, encoder=encoder, expected=expected,
                       keep_versions=cfg.index.keep_versions, new_raws=new_raws)


def delete_passages(version: IndexVersion, ids: Iterable[str], *, cfg: KiraConfig | None = None, store=None,
                    expected: int | None = None, missing_ok: bool = False) -> IndexVersion:
    """A new published version = ``version`` without ``ids`` (Lucene term deletes, FAISS ``remove_ids``)."""
    cfg = cfg or KiraConfig()
    ids = list(dict.fromkeys(ids))
    t0 = time.perf_counter()
    with writer_lock(version.path.parent):
        docids = version.docids()
        pos = {d: i for i, d in enumerate(docids) if d}
        unknown = [i for i in ids if i not in pos]
        if unknown and not missing_ok:
            raise IndexError_(f"{version.name}: {len(unknown)} id(s) not in the index, e.g. {unknown[:5]}")
        ids = [i for i in ids if i in pos]
        build = _stage(version)
        try:
            if ids:
                lucene.delete_ids(build / "lucene", ids)
            index = None
            if version.manifest.get("faiss"):
                index = faiss_index.remove_ids(version.load_faiss(gpu=False), np.array([pos[i] for i in ids]))
            for i in ids:
                docids[pos[i]] = ""
            stats = {"deleted": len(ids), "seconds": round(time.perf_counter() - t0, 3)}
            manifest = _derived_manifest(version, build, docids, op="delete", store=store, index=index,
                                         stats=stats)
        except BaseException:
            _abort(build)
            raise
        return _finish(version, build, docids, index, manifest, store=store, encoder=None, expected=expected,
                       keep_versions=cfg.index.keep_versions)


def compact(cfg: KiraConfig, store=None, version: IndexVersion | None = None) -> IndexVersion:
    """A new published version with dense FAISS ids (0..n-1) and Lucene merged to one segment."""
    version = version or current_version(cfg.indexes_dir)
    t0 = time.perf_counter()
    with writer_lock(version.path.parent):
        docids = version.docids()
        build = _stage(version)
        try:
            lucene.force_merge(build / "lucene", 1)
            index = None
            if version.manifest.get("faiss"):
                index, old_ids = faiss_index.rebuild_dense(version.load_faiss(gpu=False))
                new_docids = [docids[int(o)] for o in old_ids]
            else:
                new_docids = [d for d in docids if d]
            stats = {"before_ids": len(docids), "after_ids": len(new_docids),
                     "seconds": round(time.perf_counter() - t0, 3)}
            manifest = _derived_manifest(version, build, new_docids, op="compact", store=store, index=index,
                                         stats=stats)
        except BaseException:
            _abort(build)
            raise
        return _finish(version, build, new_docids, index, manifest, store=store, encoder=None, expected=None,
                       keep_versions=cfg.index.keep_versions)


def sync(cfg: KiraConfig, store, *, encoder_spec: str | None = None) -> IndexVersion | None:
    """Publish a version matching the store by editing the current one, or None when that is not
    possible (no current version, no store snapshot to compare with, another encoder): the caller
    then builds in full.

    WHY: plugging in a small KB or table used to re-encode every passage. The current version's
    store snapshot says exactly which passages it holds, so only passages that are new or changed
    (by :func:`fingerprint`) are encoded and only removed ones are deleted; the result goes through
    the same verification as a full build. With nothing changed the current version is returned.
    """
    try:
        cur = current_version(cfg.indexes_dir)
    except IndexError_:
        return None
    spec = encoder_spec or cfg.index.encoder
    enc = cur.manifest.get("encoder") or {}
    if not cur.snapshot_path.exists() or (enc and enc.get("spec") != spec):
        return None
    from kira.kb.store import open_store

    t0 = time.perf_counter()
    with open_store(cur.snapshot_path, read_only=True) as snap:
        old = {p.id: fingerprint(p) for batch in snap.iter_passages() for p in batch}
    changed: list[Passage] = []
    seen: set[str] = set()
    for batch in store.iter_passages():
        for p in batch:
            seen.add(p.id)
            if old.get(p.id) != fingerprint(p):
                changed.append(p)
    gone = [i for i in old if i not in seen]
    if not changed and not gone and set(old) == set(cur.docids()) - {""}:
        return cur
    log.info("sync %s: %d new or changed, %d removed passages (diff %.1f s)", cur.name, len(changed), len(gone),
             time.perf_counter() - t0)
    return add_passages(cur, changed, cfg=cfg, store=store, delete=gone, expected=store.count_passages(), op="sync")


def update_index(cfg: KiraConfig, store, *, full: bool = False, encoder_spec: str | None = None,
                 **build_options: Any) -> IndexVersion:
    """Bring the published index up to date with the store: incrementally (:func:`sync`) when the
    current version allows it, else (or with ``full``) a full build. The one call every writer uses."""
    from kira.index_build.build import build_index, has_resumable_build

    plain = not {k: v for k, v in build_options.items() if k not in ("progress", "resume")}
    if not full and plain and not (build_options.get("resume", True) and has_resumable_build(cfg.indexes_dir)):
        v = sync(cfg, store, encoder_spec=encoder_spec)
        if v is not None:
            return v
    return build_index(cfg, store, encoder_spec=encoder_spec, **build_options)
