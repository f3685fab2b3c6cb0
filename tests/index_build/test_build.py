"""Index build end to end on a tiny corpus with the tiny-bert encoder: build, verify, publish,
rebuild identity, incremental add/delete/compact, resume after a failure or a SIGKILL, and a
version that fails verification never becoming current."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from kira.errors import IndexError_
from kira.index_build import faiss_index, lucene
from kira.index_build.build import build_index, load_encoder, verify_version
from kira.index_build.incremental import add_passages, compact, delete_passages
from kira.index_build.shards import passage_contents
from kira.index_build.sources import ingest_source
from kira.index_build.versions import current_version, list_versions
from kira.schema import Passage

ENC = "tiny-bert"

CORPUS = [
    ("Paris", "Paris is the capital and most populous city of France, on the river Seine."),
    ("Berlin", "Berlin is the capital of Germany and its largest city by population."),
    ("Danube", "The Danube is the second-longest river in Europe, flowing through Vienna and Budapest."),
    ("Photosynthesis", "Photosynthesis is the process by which green plants use sunlight to make sugar."),
    ("Mount Everest", "Mount Everest is Earth's highest mountain above sea level, in the Himalayas."),
    ("Penguin", "Penguins are flightless seabirds living almost exclusively in the Southern Hemisphere."),
    ("Jupiter", "Jupiter is the fifth planet from the Sun and the largest in the Solar System."),
    ("Mozart", "Wolfgang Amadeus Mozart was a prolific composer of the Classical period, born in Salzburg."),
    ("Nile", "The Nile is a major north-flowing river in northeastern Africa, draining into the Mediterranean."),
    ("Tokyo", "Tokyo is the capital of Japan and the most populous metropolitan area in the world."),
    ("Oxygen", "Oxygen is the chemical element with symbol O and atomic number 8, a highly reactive nonmetal."),
]


def write_corpus(path: Path) -> Path:
    with path.open("w") as f:
        for i, (t, x) in enumerate(CORPUS):
            f.write(json.dumps({"id": f"d{i}", "title": t, "text": x, "lang": "en"}) + "\n")
    return path


@pytest.fixture
def cfg(config):
    config.index.shard_size = 3  # 11 passages → 4 shards, so resume has something to skip
    config.index.batch_size = 4
    config.device = "cpu"
    return config


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus.jsonl")


def dense_vectors(version) -> dict[str, np.ndarray]:
    ids, vecs = faiss_index.ids_and_vectors(version.load_faiss(gpu=False))
    docids = version.docids()
    return {docids[int(i)]: v for i, v in zip(ids, vecs, strict=True)}


def bm25_ids(version, query: str, k: int = 5) -> list[str]:
    return [h.docid for h in lucene.searcher(version.lucene_dir).search(query, k)]


def dense_ids(version, encoder, text: str, k: int = 3) -> list[str]:
    _, ids = version.load_faiss(gpu=False).search(encoder.encode([text]), k)
    docids = version.docids()
    return [docids[int(i)] for i in ids[0] if i >= 0]


def test_build_publish_rebuild_incremental(cfg, store, corpus):
    ingest_source(store, f"jsonl:{corpus}")
    v1 = build_index(cfg, store, encoder_spec=ENC, progress=False)
    cur = current_version(cfg.indexes_dir)
    assert cur.name == v1.name == "v0001"
    m = v1.manifest
    assert m["passages"] == len(CORPUS) == m["faiss"]["ntotal"] == m["verify"]["lucene_docs"]
    assert m["faiss"]["type"] == "flat" and m["encoder"]["spec"] == ENC and m["encoder"]["dim"] == 32
    assert m["bm25"] == {**m["bm25"], "k1": cfg.index.bm25_k1, "b": cfg.index.bm25_b}
    assert m["sources"][0]["name"] == "corpus" and len(m["sources"][0]["checksum"]) == 64
    assert m["verify"]["bm25_probes"] == 3 and m["verify"]["dense_probes"] == 3
    assert not (v1.path / "shards").exists()
    assert store.list_index_versions()[0]["status"] == "current"
    # Lucene is the version's doc store: raw JSON with the passage fields
    raw = json.loads(lucene.searcher(v1.lucene_dir).doc("corpus:d3:0").raw())
    assert raw["title"] == "Photosynthesis" and raw["source"] == "corpus" and raw["metadata"]["lang"] == "en"
    assert bm25_ids(v1, "flightless seabirds")[0] == "corpus:d5:0"

    # rebuilding the same source yields the same ids and the same vectors
    ingest_source(store, f"jsonl:{corpus}")
    v2 = build_index(cfg, store, encoder_spec=ENC, progress=False)
    assert v2.name == "v0002" and current_version(cfg.indexes_dir).name == "v0002"
    assert v2.docids() == v1.docids()
    assert v2.manifest["passage_ids_sha256"] == v1.manifest["passage_ids_sha256"]
    a, b = dense_vectors(v1), dense_vectors(v2)
    assert all(np.array_equal(a[k], b[k]) for k in a)

    # incremental add: only the new passage is encoded, both halves find it
    enc = load_encoder(v2.manifest["encoder"], cfg)
    new = Passage(id="extra:0", title="Kangaroo", text="Kangaroos are marsupials that hop, native to Australia.",
                  source="extra")
    v3 = add_passages(v2, [new], cfg=cfg, encoder=enc)
    assert current_version(cfg.indexes_dir).name == v3.name == "v0003"
    assert v3.manifest["passages"] == len(CORPUS) + 1 and v3.manifest["parent"] == "v0002"
    assert bm25_ids(v3, "marsupials hop")[0] == "extra:0"
    assert dense_ids(v3, enc, passage_contents(new.title, new.text))[0] == "extra:0"
    assert v3.docids()[-1] == "extra:0"
    # replacing an existing id re-encodes it and keeps one copy
    changed = Passage(id="corpus:d0:0", title="Paris", text="Paris hosts the Louvre museum and the Eiffel Tower.",
                      source="corpus")
    v4 = add_passages(v3, [changed], cfg=cfg, encoder=enc)
    assert v4.manifest["passages"] == len(CORPUS) + 1
    assert bm25_ids(v4, "Louvre Eiffel")[0] == "corpus:d0:0"
    assert v4.docids()[0] == ""  # the old FAISS id is retired, never reused

    # incremental delete
    v5 = delete_passages(v4, ["corpus:d5:0", "extra:0"], cfg=cfg)
    assert v5.manifest["passages"] == len(CORPUS) - 1
    assert "corpus:d5:0" not in bm25_ids(v5, "flightless seabirds")
    assert "corpus:d5:0" not in set(v5.docids())
    with pytest.raises(IndexError_, match="not in the index"):
        delete_passages(v5, ["nope"], cfg=cfg)
    assert current_version(cfg.indexes_dir).name == "v0005"

    # compact: dense ids, one Lucene segment, same live passages and vectors
    before = dense_vectors(v5)
    v6 = compact(cfg, store)
    assert "" not in v6.docids() and len(v6.docids()) == len(CORPUS) - 1
    assert v6.manifest["passage_ids_sha256"] == v5.manifest["passage_ids_sha256"]
    after = dense_vectors(v6)
    assert after.keys() == before.keys() and all(np.array_equal(after[k], before[k]) for k in after)
    assert len(list((v6.lucene_dir).glob("*.si"))) == 1
    # keep_versions=3: old versions pruned, current never
    assert [v.name for v in list_versions(cfg.indexes_dir)] == ["v0004", "v0005", "v0006"]
    assert verify_version(v6, expected=len(CORPUS) - 1)["faiss_ntotal"] == len(CORPUS) - 1


def test_faiss_types_build_and_delete(cfg, store):
    store.add_passages(Passage(id=f"p{i:03d}", title=f"T{i}", text=f"alpha{i} beta{i % 7} gamma{i % 3} delta {i}",
                               source="syn") for i in range(120))
    for kind in ("hnsw", "ivf-flat", "ivf-pq"):
        v = build_index(cfg, store, encoder_spec=ENC, faiss_type=kind, progress=False, resume=False)
        assert v.manifest["faiss"]["type"] == kind and faiss_index.kind_of(v.load_faiss(gpu=False)) == kind
        assert v.manifest["verify"]["dense_probes"] == 3
        v2 = delete_passages(v, ["p007"], cfg=cfg)
        assert v2.manifest["faiss"]["ntotal"] == 119 and "p007" not in v2.docids()
        assert faiss_index.kind_of(v2.load_faiss(gpu=False)) == kind


def test_resume_after_failure_skips_finished_shards(cfg, store, corpus, tmp_path):
    ingest_source(store, f"jsonl:{corpus}")
    calls: list[tuple[int, bool]] = []

    def boom(i: int, encoded: bool) -> None:
        calls.append((i, encoded))
        if i == 1:
            raise RuntimeError("killed after shard 1")

    with pytest.raises(RuntimeError):
        build_index(cfg, store, encoder_spec=ENC, progress=False, on_shard=boom)
    building = list(Path(cfg.indexes_dir).glob("*.building"))
    assert len(building) == 1 and not (Path(cfg.indexes_dir) / "current").exists()
    done = sorted(p.name for p in (building[0] / "shards").glob("shard-*.npy"))
    assert done == ["shard-00000.npy", "shard-00001.npy"]

    calls.clear()
    v = build_index(cfg, store, encoder_spec=ENC, progress=False, on_shard=lambda i, e: calls.append((i, e)))
    assert calls == [(0, False), (1, False), (2, True), (3, True)]
    assert v.name == building[0].name.split(".")[0]  # the interrupted build became the version

    # identical vectors to a build from scratch
    fresh = build_index(cfg, store, encoder_spec=ENC, progress=False, resume=False)
    a, b = dense_vectors(v), dense_vectors(fresh)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_sigkill_during_encoding_then_resume(cfg, store, corpus, workspace):
    """A real SIGKILL mid-encode (in a child process), then the parent resumes the build."""
    ingest_source(store, f"jsonl:{corpus}")
    store_path = store.path
    store.close()
    script = textwrap.dedent(f"""
        import os, signal
        from kira.config import load_config
        from kira.kb.store import DuckDBStore
        from kira.index_build.build import build_index
        cfg = load_config({str(workspace)!r})
        cfg.index.shard_size, cfg.index.batch_size, cfg.device = 3, 4, "cpu"
        st = DuckDBStore({store_path!r}, read_only=True)
        def kill(i, encoded):
            if i == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        build_index(cfg, st, encoder_spec={ENC!r}, progress=False, on_shard=kill)
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr[-2000:]
    building = list(Path(cfg.indexes_dir).glob("*.building"))
    assert len(building) == 1
    prog = json.loads((building[0] / "shards" / "progress.json").read_text())
    assert sorted(prog["shards"]) == ["0", "1", "2"]
    from kira.kb.store import DuckDBStore

    st = DuckDBStore(store_path)
    try:
        calls: list[tuple[int, bool]] = []
        v = build_index(cfg, st, encoder_spec=ENC, progress=False, on_shard=lambda i, e: calls.append((i, e)))
        assert calls == [(0, False), (1, False), (2, False), (3, True)]
        assert current_version(cfg.indexes_dir).name == v.name
    finally:
        st.close()


def test_failed_verification_never_becomes_current(cfg, store, corpus, monkeypatch):
    ingest_source(store, f"jsonl:{corpus}")
    good = build_index(cfg, store, encoder_spec=ENC, progress=False)

    orig = lucene.LuceneWriter.add_raw

    def lossy_add(self, docs):  # a corrupt Lucene stage: one passage silently lost
        return orig(self, [d for d in docs if json.loads(d)["id"] != "corpus:d4:0"])

    monkeypatch.setattr(lucene.LuceneWriter, "add_raw", lossy_add)
    with pytest.raises(IndexError_, match="verification failed") as ei:
        build_index(cfg, store, encoder_spec=ENC, progress=False)
    msg = str(ei.value)
    assert "v0002.failed" in msg and ".building" not in msg, msg  # names where the build now lies
    assert "not in Lucene: 'corpus:d4:0'" in msg, msg  # and the passage that went missing
    assert current_version(cfg.indexes_dir).name == good.name
    assert (Path(cfg.indexes_dir) / "v0002.failed").is_dir()
    assert [v.name for v in list_versions(cfg.indexes_dir)] == [good.name]
    statuses = {r["version"]: r["status"] for r in store.list_index_versions()}
    assert statuses == {"v0001": "current", "v0002": "failed"}
    monkeypatch.undo()
    assert build_index(cfg, store, encoder_spec=ENC, progress=False).name == "v0003"  # 2 is never reused


def test_snapshot_pruned_rows_and_abandoned_build_dirs(cfg, store, corpus):
    """Each version carries a read-only copy of the store; pruned versions are marked so in the
    store; an empty ``.building`` dir (killed before its first shard) is cleared by the next build."""
    import duckdb

    cfg.index.keep_versions = 2
    ingest_source(store, f"jsonl:{corpus}")
    v1 = build_index(cfg, store, encoder_spec=ENC, progress=False)
    snap = duckdb.connect(str(v1.snapshot_path), read_only=True)
    assert snap.execute("SELECT count(*) FROM passages").fetchall()[0][0] == len(CORPUS)
    assert snap.execute("SELECT name FROM sources").fetchall() == [("corpus",)]
    snap.close()
    assert v1.manifest["snapshot"]["rows"]["passages"] == len(CORPUS)
    (Path(cfg.indexes_dir) / "v0007.building").mkdir()
    build_index(cfg, store, encoder_spec=ENC, progress=False)
    assert not (Path(cfg.indexes_dir) / "v0007.building").exists()
    v3 = build_index(cfg, store, encoder_spec=ENC, progress=False)
    statuses = {r["version"]: r["status"] for r in store.list_index_versions()}
    assert statuses["v0001"] == "pruned" and statuses[v3.name] == "current", statuses


def test_empty_store_and_no_current(cfg, store):
    with pytest.raises(IndexError_, match="no current index"):
        current_version(cfg.indexes_dir)
    with pytest.raises(IndexError_, match="no passages"):
        build_index(cfg, store, encoder_spec=ENC, progress=False)


def test_bm25_only_build(cfg, store, corpus):
    ingest_source(store, f"jsonl:{corpus}")
    v = build_index(cfg, store, progress=False, dense=False)
    assert v.manifest["faiss"] is None and not v.has_dense
    assert bm25_ids(v, "Salzburg composer")[0] == "corpus:d7:0"
    with pytest.raises(IndexError_, match="no dense index"):
        v.load_faiss()


def test_update_index_encodes_only_what_changed(cfg, store, corpus, tmp_path, monkeypatch):
    """`kira kb add`/`remove`, admin jobs and `kira index build` edit the current version: unchanged
    passages keep their vectors, new ones are encoded, removed ones are deleted; `full` rebuilds."""
    from kira.index_build.incremental import update_index

    ingest_source(store, f"jsonl:{corpus}")
    v1 = update_index(cfg, store, encoder_spec=ENC, progress=False)  # no current version: a full build
    assert v1.manifest["op"] == "build"
    assert update_index(cfg, store, encoder_spec=ENC, progress=False).name == v1.name  # nothing changed

    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "x", "title": "Vienna", "text": "Vienna is the capital of Austria."}) + "\n")
    ingest_source(store, f"jsonl:{extra}")
    encoded: list[int] = []
    from kira.plm.encoder import TextEncoder

    orig = TextEncoder.encode
    monkeypatch.setattr(TextEncoder, "encode", lambda self, texts, **kw: encoded.append(len(texts)) or orig(self, texts, **kw))
    v2 = update_index(cfg, store, encoder_spec=ENC, progress=False)
    assert v2.manifest["op"] == "sync" and v2.manifest["stats"]["added"] == 1
    assert sum(encoded) <= 1 + 3  # the new passage (+ verification probes), never the whole corpus
    before, after = dense_vectors(v1), dense_vectors(v2)
    assert set(after) == set(before) | {"extra:x:0"}
    assert all(np.allclose(before[k], after[k]) for k in before)
    assert bm25_ids(v2, "Vienna capital Austria")[0] == "extra:x:0"

    store.remove_source("extra")
    v3 = update_index(cfg, store, encoder_spec=ENC, progress=False)
    assert v3.manifest["stats"]["deleted"] == 1 and "extra:x:0" not in set(v3.docids())
    verify_version(v3, expected=store.count_passages())
    assert update_index(cfg, store, encoder_spec=ENC, progress=False, full=True).manifest["op"] == "build"
