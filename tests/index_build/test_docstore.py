"""The memory-mapped docstore beside each version: written by full builds, derived by every
incremental op (add, replace, delete, compact, a parent that predates docstores), equal to Lucene's
stored documents row for row, checked by verification, and read by BM25 and dense retrieval
exactly as the Lucene fallback reads them."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from kira.errors import IndexError_
from kira.index_build import docstore, lucene
from kira.index_build.build import build_index, verify_version
from kira.index_build.incremental import add_passages, compact, delete_passages
from kira.index_build.sources import ingest_source
from kira.schema import Passage
from tests.index_build.test_build import ENC, write_corpus


@pytest.fixture
def cfg(config):
    config.index.shard_size = 4
    config.index.batch_size = 4
    config.device = "cpu"
    return config


@pytest.fixture
def built(cfg, store, tmp_path):
    ingest_source(store, f"jsonl:{write_corpus(tmp_path / 'corpus.jsonl')}")
    return build_index(cfg, store, encoder_spec=ENC, progress=False)


def assert_matches_lucene(version) -> None:
    """Every live id's docstore row is the JSON Lucene stores for it; deleted ids have no row."""
    docids = version.docids()
    ds = docstore.MmapDocStore(version.path, docids)
    s = lucene.searcher(version.lucene_dir)
    try:
        live = [d for d in docids if d]
        got = ds.get_many(live)
        assert set(got) == set(live) and len(ds) == len(live)
        for pid in live:
            assert got[pid] == json.loads(s.object.doc_raw(pid)), pid
        for i, d in enumerate(docids):
            if not d:
                assert ds.raw(i) == b""
    finally:
        s.close()
        ds.close()


def test_full_build_writes_a_docstore_equal_to_lucene(built):
    assert docstore.exists(built.path)
    assert_matches_lucene(built)
    assert built.manifest["verify"]["docstore_probes"] == 3


def test_incremental_ops_derive_the_docstore(cfg, store, built):
    v2 = add_passages(built, [Passage(id="new", title="Vienna", text="Vienna is the capital of Austria.", source="t"),
                              Passage(id=built.docids()[1], title="Berlin", text="Berlin, rewritten.", source="t")],
                      cfg=cfg)
    assert_matches_lucene(v2)
    assert docstore.MmapDocStore(v2.path, v2.docids()).get_many([built.docids()[1]])[built.docids()[1]]["text"] \
        == "Berlin, rewritten."
    v3 = delete_passages(v2, [built.docids()[0]], cfg=cfg)
    assert_matches_lucene(v3)
    v4 = compact(cfg, version=v3)
    assert "" not in v4.docids()
    assert_matches_lucene(v4)


def test_a_parent_without_docstore_gets_one_from_lucene(cfg, built):
    shutil.rmtree(built.path / docstore.DIR)  # a version built before docstores existed
    v2 = delete_passages(built, [built.docids()[2]], cfg=cfg)
    assert docstore.exists(v2.path)
    assert_matches_lucene(v2)


def test_verification_catches_a_docstore_that_disagrees_with_lucene(built):
    d = built.path / docstore.DIR
    data = bytearray((d / docstore.DOCS).read_bytes())
    offsets = np.load(d / docstore.OFFSETS)
    # swap the first two rows' contents: offsets still valid JSON, but rows no longer match their ids
    a, b = bytes(data[offsets[0]:offsets[1]]), bytes(data[offsets[1]:offsets[2]])
    (d / docstore.DOCS).write_bytes(b + a + bytes(data[offsets[2]:]))
    np.save(d / docstore.OFFSETS, np.concatenate([[0, len(b), len(a) + len(b)], offsets[3:]]).astype(np.int64))
    with pytest.raises(IndexError_, match="docstore row"):
        verify_version(built)
    np.save(d / docstore.OFFSETS, offsets[:-1])
    with pytest.raises(IndexError_, match="rows but docids.txt lists"):
        verify_version(built)


def test_retrievers_read_the_docstore_like_lucene(built):
    from kira.retriever.bm25 import BM25Retriever
    from kira.retriever.dense import DenseRetriever
    from kira.retriever.docstore import LuceneDocStore

    def run():
        bm25, dense = BM25Retriever(built), DenseRetriever(built, device="cpu")
        try:
            kinds = (type(bm25.docs), type(dense.docs))
            return kinds, bm25.batch_search(["capital city", "river"], k=5), dense.batch_search(["capital city"], k=5)
        finally:
            bm25.close()
            dense.close()

    kinds, b_mmap, d_mmap = run()
    assert kinds == (docstore.MmapDocStore, docstore.MmapDocStore)
    shutil.rmtree(built.path / docstore.DIR)
    kinds, b_lucene, d_lucene = run()
    assert kinds == (LuceneDocStore, LuceneDocStore)
    assert b_mmap == b_lucene and d_mmap == d_lucene
    assert b_mmap[0] and b_mmap[0][0].text


def test_rows_parse_what_json_dumps_writes_and_deleted_rows_read_as_none(tmp_path):
    rows = [{"id": "a", "text": "x", "metadata": {"v": float("nan")}}, None, {"id": "c", "n": 2**70}]
    w = docstore.DocStoreWriter(tmp_path)
    w.add([json.dumps(r) if r else b"" for r in rows])  # NaN and a 71-bit int: orjson refuses both
    w.close()
    store = docstore.MmapDocStore(tmp_path, ["a", "", "c"])
    a, deleted, c, outside = store.at_rows([0, 1, 2, 7])
    assert a["text"] == "x" and a["metadata"]["v"] != a["metadata"]["v"]  # NaN survives
    assert deleted is None and outside is None and c["n"] == 2**70
    assert set(store.get_many(["a", "c", "gone"])) == {"a", "c"}
    store.close()
