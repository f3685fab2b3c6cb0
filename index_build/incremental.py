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

import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from kira.config import KiraConfig
from kira.errors import IndexError_
from kira.index_build import faiss_index, lucene
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


def _finish(version: IndexVersion, build: Path, docids: list[str], index, manifest: dict[str, Any], *,
            store, encoder, expected: int | None, keep_versions: int) -> IndexVersion:
    write_docids(build / "faiss" / DOCIDS, docids)
    if index is not None:
        faiss_index.write(index, build / "faiss" / FAISS_FILE)
    return finalize(version.path.parent, build, manifest, store, encoder=encoder, expected=expected,
                    keep_versions=keep_versions)


def _abort(build: Path) -> None:
    import shutil

    if build.exists():
        shutil.rmtree(build)


def add_passages(version: IndexVersion, passages: Iterable[Passage], *, cfg: KiraConfig | None = None,
                 store=None, encoder=None, expected: int | None = None) -> IndexVersion:
    """A new published version = ``version`` + ``passages`` (same id → replaced). Only new text is encoded.

    ``store`` (optional) refreshes the manifest's source checksums; ``expected`` (optional) is the
    passage count the new version must hold (the store's count when the store is the truth).
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
        replaced = [i for i in ids if i in pos]
        build = _stage(version)
        try:
            if replaced:
                lucene.delete_ids(build / "lucene", replaced)
            w = lucene.LuceneWriter(build / "lucene", append=True)
            try:
                w.add(passages)
            finally:
                w.close()
            index = None
            if version.manifest.get("faiss"):
                index = version.load_faiss(gpu=False)
                if replaced:
                    index = faiss_index.remove_ids(index, np.array([pos[r] for r in replaced]))
                if encoder is None:
                    encoder = load_encoder(version.manifest["encoder"], cfg)
                vecs = encoder.encode([passage_contents(p.title, p.text) for p in passages],
                                      batch_size=cfg.index.batch_size)
                new_ids = np.arange(len(docids), len(docids) + len(passages), dtype=np.int64)
                if len(passages):
                    index.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), new_ids)
            for r in replaced:
                docids[pos[r]] = ""
            docids.extend(ids)
            stats = {"added": len(passages), "replaced": len(replaced), "seconds": round(time.perf_counter() - t0, 3)}
            manifest = _derived_manifest(version, build, docids, op="add", store=store, index=index, stats=stats)
        except BaseException:
            _abort(build)
            raise
        return _finish(version, build, docids, index, manifest, store=store, encoder=encoder, expected=expected,
                       keep_versions=cfg.index.keep_versions)


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
