"""Resumable encoding: passages → ``shard-NNNNN.npy`` files plus a ``progress.json``.

Shard ``i`` holds the vectors of passages ``[i*shard_size, (i+1)*shard_size)`` in store id order.
Each finished shard is recorded with a checksum of its ids and contents, so a resumed build skips
exactly the shards whose passages did not change and re-encodes the rest. Shards are written to a
temp file and renamed, and ``progress.json`` is replaced atomically after each shard, so a build
killed at any instant leaves only complete shards behind. Both the local encoder and the Ray path
(:mod:`kira.index_build.ray_encode`) write this same format.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kira.schema import Passage

PROGRESS = "progress.json"


def passage_contents(title: str, text: str) -> str:
    """The text both BM25 and the dense encoder see: pyserini's wikipedia-dpr ``title\\ntext``."""
    return f"{title}\n{text}" if title else text


def shard_checksum(passages: list[Passage]) -> str:
    h = hashlib.sha1()
    for p in passages:
        h.update(p.id.encode())
        h.update(b"\x00")
        h.update(passage_contents(p.title, p.text).encode())
        h.update(b"\x01")
    return h.hexdigest()


def shard_path(shards_dir: Path, i: int) -> Path:
    return shards_dir / f"shard-{i:05d}.npy"


@dataclass
class ShardProgress:
    """``progress.json``: which encoder made the shards and which shards are done."""

    path: Path
    encoder: dict[str, Any]
    shard_size: int
    shards: dict[str, dict[str, Any]]

    @classmethod
    def open(cls, shards_dir: Path, encoder: dict[str, Any], shard_size: int) -> ShardProgress:
        """Reuse existing progress only if the same encoder and shard size made it; else start over."""
        shards_dir.mkdir(parents=True, exist_ok=True)
        p = shards_dir / PROGRESS
        if p.exists():
            try:
                data = json.loads(p.read_text())
            except json.JSONDecodeError:
                data = {}
            if data.get("encoder") == encoder and data.get("shard_size") == shard_size:
                return cls(p, encoder, shard_size, data.get("shards", {}))
        for f in shards_dir.glob("shard-*.npy"):
            f.unlink()
        prog = cls(p, encoder, shard_size, {})
        prog.save()
        return prog

    def save(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"encoder": self.encoder, "shard_size": self.shard_size,
                                   "shards": self.shards}, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def is_done(self, i: int, checksum: str, n: int) -> bool:
        rec = self.shards.get(str(i))
        return bool(rec and rec["checksum"] == checksum and rec["n"] == n
                    and shard_path(self.path.parent, i).exists())

    def mark_done(self, i: int, checksum: str, n: int) -> None:
        self.shards[str(i)] = {"checksum": checksum, "n": n}
        self.save()


def write_shard(shards_dir: Path, i: int, vectors: np.ndarray) -> Path:
    path = shard_path(shards_dir, i)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        np.save(f, np.ascontiguousarray(vectors, dtype=np.float32))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path


def read_shard(shards_dir: Path, i: int, mmap: bool = True) -> np.ndarray:
    return np.load(shard_path(shards_dir, i), mmap_mode="r" if mmap else None)


def iter_shard_batches(store, shard_size: int) -> Iterator[tuple[int, list[Passage]]]:
    """``(shard index, passages)`` in store id order; only one shard of text in memory at a time.

    On DuckDB, ``ORDER BY id`` over the whole table would materialise (and sort) every text at once,
    so only the ids are sorted; each shard's rows are then fetched by id range.
    """
    if not hasattr(store, "execute"):  # another KnowledgeStore: trust its own streaming
        yield from enumerate(store.iter_passages(batch_size=shard_size))
        return
    ids = [r[0] for r in store.execute("SELECT id FROM passages ORDER BY id").fetchall()]
    for i, start in enumerate(range(0, len(ids), shard_size)):
        lo, hi = ids[start], ids[min(start + shard_size, len(ids)) - 1]
        rows = store.execute("SELECT id, title, text, source, metadata FROM passages "
                             "WHERE id >= ? AND id <= ? ORDER BY id", [lo, hi]).fetchall()
        yield i, [Passage(id=r[0], title=r[1] or "", text=r[2] or "", source=r[3] or "",
                          metadata=json.loads(r[4]) if r[4] else {}) for r in rows]


def encoder_identity(encoder) -> dict[str, Any]:
    """What must match for old shards to be reusable."""
    return {"spec": encoder.spec, "pooling": encoder.pooling, "normalize": bool(encoder.normalize),
            "max_length": encoder.max_length, "dim": encoder.dim}


def encode_shards(store, shards_dir: Path, encoder, shard_size: int, batch_size: int = 64,
                  progress: bool = True, on_shard: Callable[[int, bool], None] | None = None) -> int:
    """Encode every store passage into shards, skipping finished ones. Returns the shard count.

    ``on_shard(i, encoded)`` is called after each shard (``encoded`` False when it was reused);
    tests use it to kill a build midway.
    """
    prog = ShardProgress.open(shards_dir, encoder_identity(encoder), shard_size)
    total = store.count_passages()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="psg", desc="encode", unit_scale=True)
    n_shards = 0
    for i, batch in iter_shard_batches(store, shard_size):
        n_shards = i + 1
        checksum = shard_checksum(batch)
        encoded = False
        if not prog.is_done(i, checksum, len(batch)):
            texts = [passage_contents(p.title, p.text) for p in batch]
            vecs = encoder.encode(texts, batch_size=batch_size)
            write_shard(shards_dir, i, vecs)
            prog.mark_done(i, checksum, len(batch))
            encoded = True
        if bar:
            bar.update(len(batch))
        if on_shard:
            on_shard(i, encoded)
    if bar:
        bar.close()
    # shards beyond the current passage count belong to an older, larger corpus
    for f in shards_dir.glob("shard-*.npy"):
        if int(f.stem.split("-")[1]) >= n_shards:
            f.unlink()
            prog.shards.pop(str(int(f.stem.split("-")[1])), None)
    prog.save()
    return n_shards
