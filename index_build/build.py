"""Build a verified index version from every passage in the store.

Stages, each streaming from DuckDB one shard at a time:

1. **encode** (resumable): passages → ``shards/shard-NNNNN.npy`` with ``progress.json``;
2. **lucene**: passages → a Lucene index with stored raw JSON, and ``faiss/docids.txt``;
3. **faiss**: shards → a FAISS index (flat / hnsw / ivf-flat / ivf-pq);
4. **manifest + verify**: counts must agree and a probe passage must find itself (BM25 and dense);
5. **publish**: ``vNNNN.building`` is renamed to ``vNNNN`` and ``current`` moves to it atomically.

A build that fails anywhere leaves the old ``current`` untouched. A killed build leaves its
``.building`` directory; the next build with ``resume=True`` reuses its finished shards.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from kira.config import KiraConfig
from kira.errors import IndexError_
from kira.index_build import docstore, faiss_index, lucene
from kira.index_build.shards import (
    PROGRESS,
    ShardProgress,
    encode_shards,
    encoder_identity,
    iter_shard_batches,
)
from kira.index_build.versions import (
    DOCIDS,
    FAISS_FILE,
    MANIFEST,
    SNAPSHOT,
    IndexVersion,
    next_version_number,
    prune,
    publish,
    version_name,
    writer_lock,
)

FORMAT_VERSION = 1
PROBES = 3  # passages whose own text must retrieve them before a version is published
PROBE_K = 10


def ids_checksum(ids: list[str] | Any) -> str:
    """Order-sensitive checksum of the passage ids (rebuilding the same source gives the same)."""
    h = hashlib.sha256()
    for i in ids:
        if i:
            h.update(i.encode())
            h.update(b"\n")
    return h.hexdigest()


def load_encoder(spec: str | dict[str, Any], cfg: KiraConfig):
    """A ``TextEncoder`` from a spec, or from a manifest's encoder record (same pooling/normalize)."""
    from kira.plm.encoder import TextEncoder

    if isinstance(spec, dict):
        return TextEncoder(spec["spec"], pooling=spec.get("pooling"), normalize=spec.get("normalize"),
                           max_length=spec.get("max_length", 256), device=cfg.device, bf16=cfg.bf16)
    return TextEncoder(spec, device=cfg.device, bf16=cfg.bf16)


def _find_resumable(indexes_dir: Path) -> Path | None:
    """The newest ``vNNNN.building`` directory holding encode progress, if any. Build dirs with
    nothing to resume (killed before the first shard) are removed: the caller holds the writer
    lock, so no other build owns them."""
    for p in indexes_dir.glob("v*.building"):
        if p.is_dir() and not (p / "shards" / PROGRESS).exists():
            shutil.rmtree(p, ignore_errors=True)
    cands = sorted((p for p in indexes_dir.glob("v*.building") if (p / "shards" / PROGRESS).exists()),
                   key=lambda p: p.name)
    return cands[-1] if cands else None


def has_resumable_build(indexes_dir: Path) -> bool:
    """An interrupted full build with encoded shards to reuse (read-only check; no lock needed)."""
    return any((p / "shards" / PROGRESS).exists() for p in Path(indexes_dir).glob("v*.building"))


def _new_build_dir(indexes_dir: Path) -> Path:
    d = indexes_dir / f"{version_name(next_version_number(indexes_dir))}.building"
    d.mkdir(parents=True)
    return d


def source_checksums(store) -> list[dict[str, Any]]:
    return [{"name": s["name"], "kind": s["kind"], "path": s["path"], "checksum": s["checksum"],
             "version": s["version"], "n_records": s["n_records"]} for s in store.list_sources()]


def write_lucene(store, lucene_dir: Path, docids_path: Path, shard_size: int,
                 progress: bool = False) -> tuple[int, str]:
    """All store passages into Lucene and the docstore, and their ids (in store order) into docids.txt."""
    if lucene_dir.exists():
        shutil.rmtree(lucene_dir)
    writer = lucene.LuceneWriter(lucene_dir)
    docs = docstore.DocStoreWriter(lucene_dir.parent)
    h = hashlib.sha256()
    n = 0
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=store.count_passages(), unit="psg", desc="bm25", unit_scale=True)
    docids_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = docids_path.with_suffix(".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for _, batch in iter_shard_batches(store, shard_size):
                raws = [lucene.raw_doc(p) for p in batch]
                writer.add_raw(raws)
                docs.add(raws)
                for p in batch:
                    f.write(p.id + "\n")
                    h.update(p.id.encode())
                    h.update(b"\n")
                n += len(batch)
                if bar:
                    bar.update(len(batch))
    finally:
        writer.close()
        docs.close()
        if bar:
            bar.close()
    os.replace(tmp, docids_path)
    return n, h.hexdigest()


def make_manifest(version: str, cfg: KiraConfig, store, *, n: int, ids_sum: str,
                  encoder: dict[str, Any] | None, faiss_info: dict[str, Any] | None,
                  stats: dict[str, Any], parent: str | None = None, op: str = "build") -> dict[str, Any]:
    """What a version is: enough to reproduce it and for a retriever to use it correctly."""
    return {
        "format": FORMAT_VERSION,
        "version": version,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "op": op,
        "parent": parent,
        "sources": source_checksums(store) if store is not None else [],
        "passages": n,
        "passage_ids_sha256": ids_sum,
        "passage_format": "{title}\\n{text}",
        # spec, pooling, normalize, max_length, dim (+ the DPR question encoder); None without dense
        "encoder": {**encoder, "query_encoder": cfg.index.query_encoder} if encoder else None,
        "faiss": faiss_info,  # type, params, ntotal, metric; None without dense
        "bm25": {"k1": cfg.index.bm25_k1, "b": cfg.index.bm25_b, "analyzer": "DefaultEnglishAnalyzer",
                 "contents": "title\\ntext"},
        "lucene": {"docs": n, "raw": ["id", "title", "text", "contents", "source", "kind", "metadata"]},
        "stats": stats,
    }


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    tmp = path / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path / MANIFEST)


def _bm25_probes(version: IndexVersion, s, picks: list[tuple[int, str]], k: int) -> dict[str, dict]:
    """Each probe's own text must return it in BM25's top-k (or tie with an identical text)."""
    raws = {}
    for _, pid in picks:
        doc = s.doc(pid)
        if doc is None:
            raise IndexError_(f"{version.path}: passage {pid!r} is in docids.txt but not in Lucene")
        raws[pid] = json.loads(doc.raw())
    for _, pid in picks:
        contents = raws[pid]["contents"]
        hits = s.search(" ".join(contents.split()[:200]), k)
        got = [h.docid for h in hits]
        same_text = [h.docid for h in hits[:1]
                     if json.loads(s.doc(h.docid).raw())["contents"] == contents]
        if pid not in got and not same_text:
            raise IndexError_(f"{version.path}: BM25 probe failed: passage {pid!r} not in its own top-{k} {got}")
    return raws


def verify_version(version: IndexVersion, *, expected: int | None = None, encoder=None,
                   probes: int = PROBES, k: int = PROBE_K) -> dict[str, Any]:
    """Raise ``IndexError_`` unless counts agree and probe passages retrieve themselves.

    Counts: Lucene live docs == docids (non-empty) == FAISS ntotal == manifest == ``expected``
    (the store's count when given). Probes: first/middle/last passages; their own contents must
    return them in the top ``k`` of BM25 and of dense search (or tie with an identical text).
    """
    m = version.manifest
    docids = version.docids()
    live = [(i, d) for i, d in enumerate(docids) if d]
    n_lucene = lucene.num_docs(version.lucene_dir)
    report: dict[str, Any] = {"lucene_docs": n_lucene, "docids": len(live), "manifest": m.get("passages")}
    problems = []
    if n_lucene != len(live):
        in_lucene = lucene.stored_ids(version.lucene_dir)
        listed = {d for _, d in live}
        missing, extra = sorted(listed - in_lucene), sorted(in_lucene - listed)
        problems.append(f"Lucene holds {n_lucene} docs but docids.txt lists {len(live)}"
                        + (f"; not in Lucene: {', '.join(map(repr, missing[:10]))}" if missing else "")
                        + (f"; only in Lucene: {', '.join(map(repr, extra[:10]))}" if extra else ""))
    if m.get("passages") != len(live):
        problems.append(f"manifest says {m.get('passages')} passages, docids.txt lists {len(live)}")
    if expected is not None and expected != len(live):
        problems.append(f"store holds {expected} passages, index holds {len(live)}")
    if len({d for _, d in live}) != len(live):
        problems.append("duplicate passage ids in docids.txt")
    if ids_checksum(d for _, d in live) != m.get("passage_ids_sha256"):
        problems.append("passage id checksum differs from the manifest")
    index = None
    if m.get("faiss"):
        index = version.load_faiss(gpu=False)
        report["faiss_ntotal"] = int(index.ntotal)
        if index.ntotal != len(live):
            problems.append(f"FAISS holds {index.ntotal} vectors, docids.txt lists {len(live)}")
    if problems:
        raise IndexError_(f"{version.path}: verification failed: " + "; ".join(problems))
    if not live:
        return report
    picks = sorted({live[0], live[len(live) // 2], live[-1]})[:probes]
    s = lucene.searcher(version.lucene_dir, m["bm25"]["k1"], m["bm25"]["b"])
    try:
        raws = _bm25_probes(version, s, picks, k)
    finally:
        s.close()
    report["bm25_probes"] = len(picks)
    if docstore.exists(version.path):
        # a row per docids.txt line, and the probes' rows are exactly Lucene's stored documents
        bad = docstore.check(version.path, docids, {pid: raws[pid] for _, pid in picks})
        if bad:
            raise IndexError_(f"{version.path}: verification failed: " + "; ".join(bad))
        report["docstore_probes"] = len(picks)
    if index is not None:
        if encoder is None:
            encoder = load_encoder(m["encoder"], KiraConfig())
        q = np.ascontiguousarray(encoder.encode([raws[pid]["contents"] for _, pid in picks]), dtype=np.float32)
        if q.shape[1] != index.d:
            raise IndexError_(f"{version.path}: encoder gives {q.shape[1]}-dim vectors, FAISS holds {index.d}")
        fids = [fid for fid, _ in picks]
        stored = faiss_index.reconstruct(index, fids)
        cos = (q * stored).sum(1) / (np.linalg.norm(q, axis=1) * np.linalg.norm(stored, axis=1) + 1e-9)
        report["dense_probe_cosine"] = [round(float(c), 4) for c in cos]
        exact = faiss_index.kind_of(index) != "ivf-pq"  # PQ stores lossy codes
        if exact and cos.min() < 0.99:
            bad = picks[int(cos.argmin())][1]
            raise IndexError_(f"{version.path}: dense probe failed: the vector stored for {bad!r} is not its "
                              f"encoding (cosine {cos.min():.3f}); ids and vectors are misaligned")
        scores, ids = index.search(q, k)
        for row, (fid, pid) in enumerate(picks):
            got = [int(x) for x in ids[row] if x >= 0]
            # the scores FAISS reports must be those of the vectors stored under the returned ids
            expect = faiss_index.reconstruct(index, got) @ q[row]
            tol = 1e-3 * max(1.0, float(np.abs(expect).max()))
            if not np.allclose(scores[row][:len(got)], expect, atol=tol):
                raise IndexError_(f"{version.path}: dense probe failed: search scores for {pid!r} do not match "
                                  "the stored vectors (corrupt index)")
            # self-retrieval: with unit vectors in an exact index a passage is its own best match
            # (unnormalised DPR-style vectors need not be: a longer neighbour can outscore it)
            own = float(stored[row] @ q[row])
            if exact and m["encoder"].get("normalize") and fid not in got and own < scores[row][len(got) - 1] - tol:
                raise IndexError_(f"{version.path}: dense probe failed: passage {pid!r} (FAISS id {fid}) "
                                  f"not in its own top-{k} {[docids[g] for g in got]}")
        report["dense_probes"] = len(picks)
    return report


def finalize(indexes_dir: Path, build_dir: Path, manifest: dict[str, Any], store, *, encoder=None,
             expected: int | None = None, keep_versions: int = 3) -> IndexVersion:
    """Verify a finished build dir, add the store snapshot, rename it to its version name and publish it.

    A build that fails verification becomes ``vNNNN.failed`` (its number is never reused) and the
    error names that directory.
    """
    write_manifest(build_dir, manifest)
    staged = IndexVersion(build_dir, manifest)
    try:
        manifest["verify"] = verify_version(staged, expected=expected, encoder=encoder)
        if store is not None and hasattr(store, "write_snapshot"):
            t = time.perf_counter()
            rows = store.write_snapshot(build_dir / SNAPSHOT)
            if expected is not None and rows.get("passages") != expected:
                raise IndexError_(f"{build_dir}: store snapshot holds {rows.get('passages')} passages, "
                                  f"expected {expected}")
            manifest["snapshot"] = {"file": SNAPSHOT, "rows": rows, "seconds": round(time.perf_counter() - t, 3)}
    except IndexError_ as e:
        failed = build_dir.with_name(manifest["version"] + ".failed")
        if failed.exists():
            shutil.rmtree(failed)
        build_dir.rename(failed)
        if store is not None:
            store.record_index_version(manifest["version"], "failed", manifest)
        raise IndexError_(str(e).replace(str(build_dir), str(failed))) from e
    write_manifest(build_dir, manifest)
    shards = build_dir / "shards"
    if shards.exists():
        shutil.rmtree(shards)  # vectors now live in FAISS; compaction reconstructs from there
    final = build_dir.with_name(manifest["version"])
    build_dir.rename(final)
    version = IndexVersion.open(final)
    publish(indexes_dir, version)
    pruned = prune(indexes_dir, keep_versions)
    if store is not None:
        for row in store.list_index_versions():
            if row["version"] in pruned:
                store.record_index_version(row["version"], "pruned", row["manifest"])
            elif row["status"] == "current" and row["version"] != version.name:
                store.record_index_version(row["version"], "published", row["manifest"])
        store.record_index_version(version.name, "current", manifest)
    return version


def build_index(cfg: KiraConfig, store, *, encoder_spec: str | None = None, faiss_type: str | None = None,
                resume: bool = True, progress: bool = True, dense: bool = True,
                on_shard: Callable[[int, bool], None] | None = None,
                encode_backend: str = "local", ray_address: str | None = None,
                ray_options: dict[str, Any] | None = None) -> IndexVersion:
    """All store passages → a new verified version, published as ``current``.

    ``encode_backend="ray"`` runs the encode stage on Ray Data (see ``ray_encode``); everything
    else is identical. ``on_shard(i, encoded)`` is a hook after each encoded or reused shard.
    """
    indexes_dir = Path(cfg.indexes_dir)
    with writer_lock(indexes_dir):
        return _build_locked(cfg, store, indexes_dir, encoder_spec=encoder_spec, faiss_type=faiss_type,
                             resume=resume, progress=progress, dense=dense, on_shard=on_shard,
                             encode_backend=encode_backend, ray_address=ray_address, ray_options=ray_options)


def _build_locked(cfg: KiraConfig, store, indexes_dir: Path, *, encoder_spec, faiss_type, resume, progress,
                  dense, on_shard, encode_backend, ray_address, ray_options) -> IndexVersion:
    n = store.count_passages()
    if n == 0:
        raise IndexError_("the store holds no passages: ingest a source first (--source KIND:PATH)")
    spec = encoder_spec or cfg.index.encoder
    shard_size = cfg.index.shard_size
    build_dir = _find_resumable(indexes_dir) if dense else None
    if build_dir is not None and not resume:
        shutil.rmtree(build_dir)
        build_dir = None
    if build_dir is None:
        build_dir = _new_build_dir(indexes_dir)
    name = build_dir.name.split(".")[0]
    stats: dict[str, Any] = {"passages": n}
    t0 = time.perf_counter()
    encoder = enc_info = faiss_info = None
    shards_dir = build_dir / "shards"
    if dense:
        encoder = load_encoder(spec, cfg)
        enc_info = encoder_identity(encoder)
        t = time.perf_counter()
        if encode_backend == "ray":
            from kira.index_build.ray_encode import encode_shards_ray

            n_shards = encode_shards_ray(store, shards_dir, enc_info, shard_size, cfg.index.batch_size,
                                         address=ray_address, progress=progress, on_shard=on_shard,
                                         device=cfg.device, bf16=cfg.bf16, **(ray_options or {}))
        elif encode_backend == "local":
            n_shards = encode_shards(store, shards_dir, encoder, shard_size, cfg.index.batch_size,
                                     progress=progress, on_shard=on_shard)
        else:
            raise IndexError_(f"encode backend {encode_backend!r} unknown (local, ray)")
        stats["encode_s"] = round(time.perf_counter() - t, 3)
        stats["encode_psg_per_s"] = round(n / max(stats["encode_s"], 1e-9), 1)
    t = time.perf_counter()
    n_docs, ids_sum = write_lucene(store, build_dir / "lucene", build_dir / "faiss" / DOCIDS, shard_size,
                                   progress=progress)
    stats["lucene_s"] = round(time.perf_counter() - t, 3)
    if dense:
        prog = ShardProgress.open(shards_dir, enc_info, shard_size)
        sizes = [prog.shards[str(i)]["n"] for i in range(n_shards)]
        if sum(sizes) != n_docs:
            raise IndexError_(f"{build_dir}: shards hold {sum(sizes)} vectors but {n_docs} passages were indexed "
                              "(the store changed during the build?)")
        kind = faiss_index.resolve_type(faiss_type or cfg.index.faiss_type, n_docs)
        t = time.perf_counter()
        index, params = faiss_index.build_from_shards(shards_dir, sizes, enc_info["dim"], kind, progress=progress)
        faiss_index.write(index, build_dir / "faiss" / FAISS_FILE)
        stats["faiss_s"] = round(time.perf_counter() - t, 3)
        faiss_info = {"type": kind, "requested": faiss_type or cfg.index.faiss_type, "params": params,
                      "ntotal": int(index.ntotal), "metric": "inner_product", "dim": enc_info["dim"],
                      "id_map": "IndexIDMap2" if kind in ("flat", "hnsw") else "native-ivf"}
        del index
    stats["total_s"] = round(time.perf_counter() - t0, 3)
    manifest = make_manifest(name, cfg, store, n=n_docs, ids_sum=ids_sum, encoder=enc_info,
                             faiss_info=faiss_info, stats=stats)
    return finalize(indexes_dir, build_dir, manifest, store, encoder=encoder, expected=n,
                    keep_versions=cfg.index.keep_versions)
