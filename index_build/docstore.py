"""A version's passages as one memory-mapped file beside its indexes: row i = FAISS id i.

Why: reading a hit's stored JSON from Lucene costs two JNI calls per hit (~17 µs), more than the
search itself at k=100; a slice of a memory-mapped file and an ``orjson`` parse cost about a µs, need
no Java, and the pages are shared by every process that opens the version (server workers, CLI).

Layout inside a version directory (rows aligned with ``faiss/docids.txt``)::

    docstore/docs.bin       UTF-8 raw JSON of each passage, concatenated (the same JSON Lucene stores)
    docstore/offsets.npy    int64 [n + 1]; row i is docs.bin[offsets[i]:offsets[i + 1]] (empty = deleted)

A version built before this file existed has no ``docstore/``; readers then use Lucene
(``retriever.docstore.open_docstore`` chooses).
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from kira.errors import IndexError_

DIR = "docstore"
DOCS = "docs.bin"
OFFSETS = "offsets.npy"


def loads(raw: bytes | str) -> Any:
    """Parse a stored passage's JSON: ``orjson`` (3x the standard library on these rows), falling
    back to ``json`` for what orjson refuses but ``json.dumps`` writes (``NaN``, huge integers)."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def exists(version_dir: str | os.PathLike) -> bool:
    d = Path(version_dir) / DIR
    return (d / DOCS).exists() and (d / OFFSETS).exists()


class DocStoreWriter:
    """Append rows in order; ``close()`` writes the offsets (the store is complete only then)."""

    def __init__(self, version_dir: str | os.PathLike):
        self.dir = Path(version_dir) / DIR
        self.dir.mkdir(parents=True, exist_ok=True)
        self._f = (self.dir / DOCS).open("wb")
        self._offsets = [0]

    def add(self, raws: Iterable[str | bytes]) -> None:
        for r in raws:
            b = r.encode("utf-8") if isinstance(r, str) else r
            self._f.write(b)
            self._offsets.append(self._offsets[-1] + len(b))

    def close(self) -> int:
        self._f.close()
        tmp = self.dir / (OFFSETS + ".tmp.npy")
        np.save(tmp, np.asarray(self._offsets, dtype=np.int64))
        os.replace(tmp, self.dir / OFFSETS)
        return len(self._offsets) - 1


class MmapDocStore:
    """Read-only passage lookup by id or row; safe to share between threads."""

    def __init__(self, version_dir: str | os.PathLike, docids: Sequence[str]):
        d = Path(version_dir) / DIR
        # a Python list: per-hit indexing without numpy scalars
        self._bounds: list[int] = np.load(d / OFFSETS).tolist()
        if len(self._bounds) != len(docids) + 1:
            raise IndexError_(f"{d}: {len(self._bounds) - 1} rows but docids.txt lists {len(docids)} ids")
        self._file = (d / DOCS).open("rb")
        size = os.fstat(self._file.fileno()).st_size
        self._buf = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
        self.rows = {pid: i for i, pid in enumerate(docids) if pid}

    def __len__(self) -> int:
        return len(self.rows)

    def raw(self, row: int) -> bytes:
        return self._buf[self._bounds[row]:self._bounds[row + 1]]

    def get_many(self, ids: Iterable[str], threads: int = 1) -> dict[str, dict[str, Any]]:
        """Parsed docs for ``ids`` (ids not in this version are absent); the LuceneDocStore interface."""
        out: dict[str, dict[str, Any]] = {}
        rows, b, buf, parse = self.rows, self._bounds, self._buf, loads
        for pid in ids:
            if pid in out:
                continue
            i = rows.get(pid)
            if i is not None and b[i + 1] > b[i]:
                out[pid] = parse(buf[b[i]:b[i + 1]])
        return out

    def at_rows(self, rows: Iterable[int]) -> list[dict[str, Any] | None]:
        """Parsed docs by row (a FAISS id), no id lookup; ``None`` for a deleted or out-of-range row.
        Each call parses afresh, so callers own (and may modify) the dicts."""
        b, buf, parse, n = self._bounds, self._buf, loads, len(self._bounds) - 1
        return [parse(buf[b[i]:b[i + 1]]) if 0 <= i < n and b[i + 1] > b[i] else None for i in rows]

    def close(self) -> None:
        if isinstance(self._buf, mmap.mmap):
            self._buf.close()
        self._file.close()


def derive(parent_dir: str | os.PathLike, build_dir: str | os.PathLike, docids: Sequence[str],
           new_raws: Mapping[str, str], parent_docids: Sequence[str], lucene_raw=None) -> int:
    """The docstore of an incremental version: each row's JSON from ``new_raws`` (added or replaced
    passages), else the parent's row for that id, else empty (deleted). A parent without a
    docstore is read through ``lucene_raw(id) -> str | None`` (the parent's Lucene)."""
    parent = MmapDocStore(parent_dir, parent_docids) if exists(parent_dir) else None
    w = DocStoreWriter(build_dir)
    try:
        for pid in docids:
            if not pid:
                w.add([b""])
            elif pid in new_raws:
                w.add([new_raws[pid]])
            elif parent is not None and pid in parent.rows:
                w.add([parent.raw(parent.rows[pid])])
            else:
                raw = lucene_raw(pid) if lucene_raw is not None else None
                if raw is None:
                    raise IndexError_(f"{build_dir}: no stored document for passage {pid!r} in the parent version")
                w.add([raw])
    finally:
        n = w.close()
        if parent is not None:
            parent.close()
    return n


def check(version_dir: str | os.PathLike, docids: Sequence[str], lucene_raws: Mapping[str, dict]) -> list[str]:
    """Problems (empty when fine): row count, and each probe's row equals what Lucene stores."""
    try:
        store = MmapDocStore(version_dir, docids)
    except (OSError, ValueError, IndexError_) as e:
        return [f"docstore unreadable: {e}"]
    try:
        got = store.get_many(lucene_raws)
        return [f"docstore row for {pid!r} differs from Lucene's stored document"
                for pid, doc in lucene_raws.items() if got.get(pid) != doc]
    finally:
        store.close()
