"""A KB added while a request is being answered does not leak into that answer: text, KB facts and
tables are all read from the request's index version (its store snapshot), never the live store."""

from __future__ import annotations

from kira.config import load_config
from kira.index_build.incremental import update_index
from kira.kb.plugin import add_kb
from kira.kb.store import DuckDBStore
from kira.pipeline import QAPipeline
from kira.reader.extractive import ExtractiveReader
from kira.schema import Passage


def test_a_kb_added_during_a_request_does_not_mix_versions(workspace):
    (workspace / "kira.toml").write_text('[index]\nencoder = "tiny-bert"\n')
    cfg = load_config(workspace)
    (workspace / "rivers.tsv").write_text("Danube\tflows_through\tVienna\nMur\tflows_through\tGraz\n")
    (workspace / "capitals.tsv").write_text("Graz\tcapital_of\tStyria\nVienna\tcapital_of\tAustria\n")
    with DuckDBStore(cfg.store_path) as store:
        store.add_passages([Passage("t:1", "Graz", "Graz is a city on the Mur.", "t")])
        store.register_source("t", "text:jsonl")
        add_kb(store, "rivers", "tsv", [str(workspace / "rivers.tsv")])
        v1 = update_index(cfg, store, progress=False)
    ExtractiveReader.load("tiny-bert", device="cpu").save(cfg.models_dir / "reader-extractive")

    pipe = QAPipeline.from_config(cfg)
    bm25 = pipe.retrievers["bm25"]
    search = bm25.batch_search
    published = []

    def search_then_publish(queries, k=100, **kw):
        hits = search(queries, k=k, **kw)
        if not published:  # a writer adds a KB and publishes a new version mid-request
            with DuckDBStore(cfg.store_path) as live:
                add_kb(live, "capitals", "tsv", [str(workspace / "capitals.tsv")])
                published.append(update_index(cfg, live, progress=False))
        return hits

    bm25.batch_search = search_then_publish
    question = "What is Graz the capital of?"
    result = pipe.ask(question, k=10, sources="all", method="bm25")
    assert published and published[0].name != v1.name
    assert result.index_version == v1.name
    assert all(e.source != "capitals" for e in result.evidence), [e.id for e in result.evidence]
    assert all((e.metadata or {}).get("index_version", v1.name) == v1.name for e in result.evidence)
    kb_facts = [e for e in result.evidence if e.kind == "kb_fact"]
    assert all(f.source == "rivers" for f in kb_facts)
    pipe.close()

    # the next request, on the new version, does see the new KB: the check above can fail
    fresh = QAPipeline.from_config(cfg).ask(question, k=10, sources="all", method="bm25")
    assert fresh.index_version == published[0].name
    assert any(e.source == "capitals" for e in fresh.evidence)
