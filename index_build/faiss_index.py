"""The dense half of a version: a FAISS inner-product index with int64 ids (FAISS id → docids.txt).

Flat and HNSW bases are wrapped in ``IndexIDMap2``. IVF indexes carry int64 ids natively and are
stored unwrapped: ``IndexIDMap.remove_ids`` assumes the base renumbers after a removal, which IVF
does not, so an IDMap over IVF would mis-map ids after a delete.

Types: ``flat`` (exact IP), ``hnsw`` (HNSW32, no training), ``ivf-flat`` and ``ivf-pq`` (trained on
a sample of the shards), ``auto`` = flat below 1M passages and HNSW above (as DPR used for 21M).
Vectors are added shard by shard from memory-mapped ``.npy`` files, so peak memory is the index
itself plus one shard. Training and adding run on GPU when FAISS sees one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from kira.errors import IndexError_
from kira.index_build.shards import read_shard
from kira.index_build.versions import faiss_gpus

FAISS_TYPES = ("auto", "flat", "hnsw", "ivf-flat", "ivf-pq")
AUTO_FLAT_BELOW = 1_000_000


def resolve_type(faiss_type: str, n: int) -> str:
    if faiss_type not in FAISS_TYPES:
        raise IndexError_(f"faiss type {faiss_type!r} unknown; choose one of {', '.join(FAISS_TYPES)}")
    if faiss_type == "auto":
        return "flat" if n < AUTO_FLAT_BELOW else "hnsw"
    return faiss_type


def ivf_params(n: int, dim: int, kind: str) -> dict[str, Any]:
    """nlist ≈ 4·sqrt(n) (FAISS guideline) but ≥ 39 training points per list; PQ with ≤8-dim subvectors."""
    nlist = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
    params: dict[str, Any] = {"nlist": nlist, "nprobe": min(nlist, max(1, nlist // 8), 64) or 1}
    if kind == "ivf-pq":
        m = next(d for d in range(dim // 8 or 1, 0, -1) if dim % d == 0)
        nbits = max(1, min(8, int(math.log2(max(2, n)))))  # k-means needs >= 2**nbits points
        params.update(m=m, nbits=nbits)
    return params


def make_index(kind: str, dim: int, n: int):
    """An untrained base index of ``kind`` and its parameters (for the manifest)."""
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim), {}
    if kind == "hnsw":
        idx = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        idx.hnsw.efConstruction = 80
        idx.hnsw.efSearch = 128
        return idx, {"M": 32, "efConstruction": 80, "efSearch": 128}
    params = ivf_params(n, dim, kind)
    quantizer = faiss.IndexFlatIP(dim)
    if kind == "ivf-flat":
        idx = faiss.IndexIVFFlat(quantizer, dim, params["nlist"], faiss.METRIC_INNER_PRODUCT)
    elif kind == "ivf-pq":
        idx = faiss.IndexIVFPQ(quantizer, dim, params["nlist"], params["m"], params["nbits"],
                               faiss.METRIC_INNER_PRODUCT)
    else:
        raise IndexError_(f"faiss type {kind!r} unknown")
    idx.nprobe = params["nprobe"]
    idx.own_fields = True
    quantizer.this.disown()  # owned by the IVF index now
    return idx, params


def training_sample(shards_dir: Path, shard_sizes: list[int], size: int, seed: int = 0) -> np.ndarray:
    """A uniform random sample of ``size`` vectors drawn across shards (only the sample in memory)."""
    total = sum(shard_sizes)
    rng = np.random.default_rng(seed)
    pick = np.sort(rng.choice(total, size=min(size, total), replace=False))
    out, offset = [], 0
    for i, n in enumerate(shard_sizes):
        sel = pick[(pick >= offset) & (pick < offset + n)] - offset
        if len(sel):
            out.append(np.asarray(read_shard(shards_dir, i)[sel], dtype=np.float32))
        offset += n
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _train(base, kind: str, sample: np.ndarray) -> None:
    import faiss

    if kind not in ("ivf-flat", "ivf-pq"):
        return
    if faiss_gpus() > 0:  # k-means on GPU: a GPU flat index as the clustering index
        base.clustering_index = faiss.index_cpu_to_all_gpus(faiss.IndexFlatIP(base.d))
    base.train(np.ascontiguousarray(sample, dtype=np.float32))


def build_from_shards(shards_dir: Path, shard_sizes: list[int], dim: int, kind: str,
                      progress: bool = False) -> tuple[Any, dict[str, Any]]:
    """``(IndexIDMap2, params)`` holding shard vectors with ids 0..n-1 in shard order."""
    import faiss

    n = sum(shard_sizes)
    base, params = make_index(kind, dim, n)
    if kind in ("ivf-flat", "ivf-pq"):
        sample_size = min(n, max(256 * 39, params["nlist"] * 64))
        _train(base, kind, training_sample(shards_dir, shard_sizes, sample_size))
    index = wrap(base)
    work = index
    if faiss_gpus() > 0 and kind in ("flat", "ivf-flat", "ivf-pq"):
        try:  # the GPU cloner handles IDMap wrappers over flat/IVF indexes
            work = faiss.index_cpu_to_all_gpus(index)
        except RuntimeError:
            work = index
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=n, unit="vec", desc="faiss", unit_scale=True)
    offset = 0
    for i, _ in enumerate(shard_sizes):
        vecs = np.ascontiguousarray(read_shard(shards_dir, i), dtype=np.float32)
        work.add_with_ids(vecs, np.arange(offset, offset + len(vecs), dtype=np.int64))
        offset += len(vecs)
        if bar:
            bar.update(len(vecs))
    if bar:
        bar.close()
    if work is not index:
        index = faiss.index_gpu_to_cpu(work)
    return index, params


IVFDATA = "index.ivfdata"  # on-disk inverted lists, beside index.faiss


def build_ivf_ondisk(trained, chunks: Iterable[tuple[np.ndarray, np.ndarray]], out_dir: Path,
                     progress: bool = False):
    """An IVF index whose inverted lists live in ``out_dir/index.ivfdata`` (memory-mapped at search
    time), so the index can exceed RAM: each chunk of ``(vectors, ids)`` is added to its own copy of
    the ``trained`` empty index and written as a block, then the blocks' lists are merged into one
    file (FAISS's ``OnDiskInvertedLists``). Peak memory is one chunk plus its codes. Write the
    result with :func:`write` into the same ``out_dir``; ``IndexVersion.load_faiss`` finds the lists
    there (``IO_FLAG_ONDISK_SAME_DIR``), so the directory may be renamed after the build."""
    import faiss
    from faiss.contrib.ondisk import merge_ondisk

    if not isinstance(faiss.downcast_index(trained), faiss.IndexIVF) or not trained.is_trained:
        raise IndexError_("build_ivf_ondisk needs a trained, empty IVF index")
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks: list[Path] = []
    try:
        for i, (vecs, ids) in enumerate(chunks):
            block = faiss.clone_index(trained)
            block.add_with_ids(np.ascontiguousarray(vecs, dtype=np.float32), np.asarray(ids, dtype=np.int64))
            blocks.append(out_dir / f"block{i:05d}.index")
            faiss.write_index(block, str(blocks[-1]))
            del block
            if progress:
                print(f"faiss: block {i} written ({len(ids)} vectors)", flush=True)
        index = faiss.clone_index(trained)
        merge_ondisk(index, [str(b) for b in blocks], str(out_dir / IVFDATA))
    finally:
        for b in blocks:
            b.unlink(missing_ok=True)
    return index


def wrap(base):
    """IDMap2 around flat/HNSW; IVF as is (it maps ids itself)."""
    import faiss

    if isinstance(base, faiss.IndexIVF):
        return base
    index = faiss.IndexIDMap2(base)
    index.own_fields = True
    base.this.disown()
    return index


def base_of(index):
    import faiss

    index = faiss.downcast_index(index)
    return faiss.downcast_index(index.index) if isinstance(index, faiss.IndexIDMap) else index


def kind_of(index) -> str:
    import faiss

    base = base_of(index)
    if isinstance(base, faiss.IndexHNSW):
        return "hnsw"
    if isinstance(base, faiss.IndexIVFPQ):
        return "ivf-pq"
    if isinstance(base, faiss.IndexIVF):
        return "ivf-flat"
    return "flat"


def write(index, path: Path) -> None:
    import faiss

    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    tmp.replace(path)


def ids_and_vectors(index) -> tuple[np.ndarray, np.ndarray]:
    """All (id, vector) pairs of the index (exact for flat/HNSW/IVF-flat, decoded codes for PQ)."""
    import faiss

    idx = faiss.downcast_index(index)  # `index` stays referenced: it owns the C++ object
    base = base_of(idx)
    if isinstance(idx, faiss.IndexIVF):
        inv = idx.invlists
        parts = [faiss.rev_swig_ptr(inv.get_ids(li), inv.list_size(li)).copy()
                 for li in range(idx.nlist) if inv.list_size(li)]
        ids = np.sort(np.concatenate(parts).astype(np.int64)) if parts else np.zeros(0, np.int64)
        idx.set_direct_map_type(faiss.DirectMap.Hashtable)
        vecs = idx.reconstruct_batch(ids) if len(ids) else np.zeros((0, idx.d), np.float32)
        return ids, np.asarray(vecs, dtype=np.float32)
    ids = faiss.vector_to_array(idx.id_map).astype(np.int64)
    vecs = base.reconstruct_n(0, base.ntotal) if base.ntotal else np.zeros((0, base.d), np.float32)
    del index  # (kept alive until here)
    return ids, np.asarray(vecs, dtype=np.float32)


def reconstruct(index, ids: list[int]) -> np.ndarray:
    """Stored vectors (decoded codes for PQ) of the given FAISS ids."""
    import faiss

    idx = faiss.downcast_index(index)
    if isinstance(idx, faiss.IndexIVF):
        idx.set_direct_map_type(faiss.DirectMap.Hashtable)
    return np.stack([np.asarray(idx.reconstruct(int(i)), dtype=np.float32) for i in ids])


def rebuild_dense(index) -> tuple[Any, np.ndarray]:
    """A compacted copy: same vectors, ids renumbered 0..n-1 in ascending old-id order.

    Returns ``(new index, old ids in new order)``. IVF types keep their trained quantizer (a clone
    reset and refilled), so compaction never retrains.
    """
    import faiss

    kind = kind_of(index)
    ids, vecs = ids_and_vectors(index)
    order = np.argsort(ids, kind="stable")
    ids, vecs = ids[order], vecs[order]
    base = base_of(index)
    if isinstance(base, faiss.IndexIVF):
        new = faiss.clone_index(base)
        new.reset()
        new.set_direct_map_type(faiss.DirectMap.NoMap)
    else:
        new_base, _ = make_index(kind, base.d, len(ids))
        new = wrap(new_base)
    if len(ids):
        new.add_with_ids(np.ascontiguousarray(vecs), np.arange(len(ids), dtype=np.int64))
    return new, ids


def remove_ids(index, ids: np.ndarray):
    """Remove FAISS ids; returns the (possibly new) index.

    Flat and IVF remove in place. HNSW graphs cannot drop nodes, so for HNSW the graph is rebuilt
    from the remaining stored vectors, keeping their ids (no re-encoding, but O(n) graph work).
    """
    import faiss

    ids = np.asarray(ids, dtype=np.int64)
    if not len(ids):
        return index
    base = base_of(index)
    if not isinstance(base, faiss.IndexHNSW):
        index.remove_ids(ids)
        return index
    all_ids, vecs = ids_and_vectors(index)
    keep = ~np.isin(all_ids, ids)
    new_base, _ = make_index("hnsw", base.d, int(keep.sum()))
    new = wrap(new_base)
    if keep.any():
        new.add_with_ids(np.ascontiguousarray(vecs[keep]), all_ids[keep])
    return new
