"""Versioned indexes on disk: immutable version directories and an atomically moved ``current``.

Layout (the contract the retriever reads)::

    indexes/
      v0007/
        manifest.json        # see build.make_manifest: counts, encoder, faiss type, bm25 k1/b, checksums
        lucene/              # Lucene index (pyserini JsonCollection); stored raw JSON per passage:
                             #   {"id", "title", "text", "contents", "source", "kind", "metadata"}
        faiss/index.faiss    # faiss.IndexIDMap2 over the base index; ids are int64
        faiss/docids.txt     # line i = passage id of FAISS id i ("" where the id was deleted)
        faiss/index.ivfdata  # IVF inverted lists on disk (only for indexes built past RAM)
        docstore/            # the same raw JSON, memory-mapped, row i = FAISS id i (index_build.docstore)
        store.duckdb         # read-only snapshot of the store this version was built from
      v0008.building/        # a build in progress (never read by retrievers)
      current -> v0007       # replaced with os.replace only after the version verified itself

A version is self-contained: its docstore (or, for versions built before docstores, Lucene) holds
every passage's text, so a retriever needs nothing else.
Why docids.txt instead of positions: incremental adds/deletes keep FAISS ids stable (IDMap2), so
the id → passage mapping is explicit and ``compact`` renumbers densely.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kira.errors import IndexError_

VERSION_RE = re.compile(r"^v(\d{4,})$")
CURRENT = "current"
MANIFEST = "manifest.json"
DOCIDS = "docids.txt"
FAISS_FILE = "index.faiss"
SNAPSHOT = "store.duckdb"  # read-only copy of the store the version was built from (kira.workspace)


@dataclass
class IndexVersion:
    """One immutable index version directory and its manifest."""

    path: Path
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def number(self) -> int:
        return version_number(self.path.name)

    @property
    def lucene_dir(self) -> Path:
        return self.path / "lucene"

    @property
    def faiss_dir(self) -> Path:
        return self.path / "faiss"

    @property
    def snapshot_path(self) -> Path:
        return self.path / SNAPSHOT

    @property
    def has_dense(self) -> bool:
        return (self.faiss_dir / FAISS_FILE).exists()

    def docids(self) -> list[str]:
        """FAISS int64 id → passage id (list index is the FAISS id; "" marks a deleted id)."""
        return read_docids(self.faiss_dir / DOCIDS)

    def load_faiss(self, gpu: bool | None = None):
        """The FAISS index (IndexIDMap2); moved to all GPUs when ``gpu`` (None = when present)."""
        import faiss

        path = self.faiss_dir / FAISS_FILE
        if not path.exists():
            raise IndexError_(f"{self.path}: version has no dense index ({path} missing)")
        # an IVF index with on-disk inverted lists finds them beside index.faiss (memory-mapped)
        index = faiss.read_index(str(path), faiss.IO_FLAG_ONDISK_SAME_DIR)
        if gpu is None:
            gpu = faiss_gpus() > 0
        if gpu:
            index = faiss.index_cpu_to_all_gpus(index)
        return index

    @classmethod
    def open(cls, path: str | os.PathLike) -> IndexVersion:
        p = Path(path).resolve()
        mf = p / MANIFEST
        if not mf.exists():
            raise IndexError_(f"{p}: not an index version (no {MANIFEST})")
        try:
            manifest = json.loads(mf.read_text())
        except json.JSONDecodeError as e:
            raise IndexError_(f"{mf}: corrupt manifest: {e}") from e
        return cls(p, manifest)


def faiss_gpus() -> int:
    import faiss

    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0


def version_number(name: str) -> int:
    m = VERSION_RE.match(name)
    if not m:
        raise IndexError_(f"{name!r} is not a version name (vNNNN)")
    return int(m.group(1))


def version_name(n: int) -> str:
    return f"v{n:04d}"


def read_docids(path: Path) -> list[str]:
    if not path.exists():
        raise IndexError_(f"{path} missing")
    with path.open(encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


def write_docids(path: Path, docids: list[str]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for d in docids:
            f.write(d + "\n")
    os.replace(tmp, path)


def list_versions(indexes_dir: str | os.PathLike) -> list[IndexVersion]:
    """Finished versions (with a manifest), oldest first. ``.building`` dirs are not versions."""
    d = Path(indexes_dir)
    if not d.is_dir():
        return []
    out = []
    for p in d.iterdir():
        if p.is_dir() and not p.is_symlink() and VERSION_RE.match(p.name) and (p / MANIFEST).exists():
            try:
                out.append(IndexVersion.open(p))
            except IndexError_:
                continue
    return sorted(out, key=lambda v: v.number)


def next_version_number(indexes_dir: str | os.PathLike) -> int:
    """One past the highest number used by any version or build dir (a number is never reused)."""
    d = Path(indexes_dir)
    nums = [0]
    if d.is_dir():
        for p in d.iterdir():
            m = re.match(r"^v(\d{4,})(\.building|\.failed)?$", p.name)
            if m:
                nums.append(int(m.group(1)))
    return max(nums) + 1


def current_version(indexes_dir: str | os.PathLike) -> IndexVersion:
    """The version ``indexes/current`` points at; a clear error when there is none."""
    link = Path(indexes_dir) / CURRENT
    if not link.is_symlink() and not link.exists():
        raise IndexError_(f"no current index in {indexes_dir}: build one with "
                          f"`kira index build --index <workspace> --source KIND:PATH`")
    target = link.resolve()
    if not target.is_dir():
        raise IndexError_(f"{link} points at {target}, which does not exist")
    return IndexVersion.open(target)


def current_name(indexes_dir: str | os.PathLike) -> str | None:
    link = Path(indexes_dir) / CURRENT
    return os.readlink(link) if link.is_symlink() else None


def publish(indexes_dir: str | os.PathLike, version: IndexVersion) -> None:
    """Point ``current`` at ``version`` atomically: a temp symlink renamed over the old one."""
    d = Path(indexes_dir)
    if version.path.parent.resolve() != d.resolve():
        raise IndexError_(f"{version.path} is not inside {d}")
    if not (version.path / MANIFEST).exists():
        raise IndexError_(f"{version.path}: refusing to publish a version without a manifest")
    tmp = d / f".{CURRENT}.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(version.path.name, tmp)  # relative, so the workspace can move
    os.replace(tmp, d / CURRENT)


def prune(indexes_dir: str | os.PathLike, keep_versions: int) -> list[str]:
    """Delete the oldest finished versions beyond ``keep_versions`` (never ``current``)."""
    cur = current_name(indexes_dir)
    versions = list_versions(indexes_dir)
    keep = max(1, keep_versions)
    removed = []
    for v in versions[:-keep] if len(versions) > keep else []:
        if v.name == cur:
            continue
        shutil.rmtree(v.path)
        removed.append(v.name)
    return removed


@contextmanager
def writer_lock(indexes_dir: str | os.PathLike) -> Iterator[None]:
    """One writer (build/add/delete/compact/gc) per indexes dir at a time; readers never lock."""
    d = Path(indexes_dir)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexError_(f"{d} is being written by another kira process (build/add/delete/compact)") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def remove_stale_builds(indexes_dir: str | os.PathLike) -> list[str]:
    """Delete abandoned ``vNNNN.building`` and failed ``vNNNN.failed`` directories (``kira index gc``)."""
    d = Path(indexes_dir)
    removed = []
    if d.is_dir():
        for p in d.iterdir():
            if p.is_dir() and p.name.endswith((".building", ".failed")):
                shutil.rmtree(p)
                removed.append(p.name)
    return removed
