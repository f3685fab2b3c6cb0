"""Verbalized KB passages: templates, chunking, provenance, and they are found by BM25 search."""

from __future__ import annotations

import pytest

from kira.errors import IngestError
from kira.kb.linking import KBFactRetriever
from kira.kb.plugin import add_kb
from kira.kb.verbalize import load_templates, verbalize_kb
from kira.retriever.testing import RetrieverContract
from kira.schema import Entity, Relation, Triple


def small():
    ents = {"paris": Entity("paris", "g", "Paris", description="Capital city of France"),
            "france": Entity("france", "g", "France"), "seine": Entity("seine", "g", "Seine")}
    rels = {"capital_of": Relation("capital_of", "g", "capital of"), "river": Relation("river", "g", "river")}
    triples = [Triple("g", "paris", "capital_of", "france"), Triple("g", "paris", "river", "seine")]
    return ents, rels, triples


def test_linearized_and_templated_text_with_provenance():
    ents, rels, triples = small()
    [p] = verbalize_kb("g", ents, rels, triples, {"capital_of": "{subject} is the capital of {object}"})
    assert p.id == "g:paris:0" and p.title == "Paris" and p.source == "g"
    assert "Paris, capital of: France, river: Seine." in p.text
    assert "Paris is the capital of France." in p.text  # per-relation template
    assert "Paris has river Seine." in p.text  # generic fallback
    assert p.text.startswith("Paris: Capital city of France.")
    assert p.metadata["triples"] == [["paris", "capital_of", "france"], ["paris", "river", "seine"]]
    assert p.metadata["kb"] == "g"


def test_subjects_with_many_facts_are_chunked():
    ents = {f"e{i}": Entity(f"e{i}", "g", f"E{i}") for i in range(40)}
    triples = [Triple("g", "e0", "r", f"e{i}") for i in range(1, 40)]
    ps = list(verbalize_kb("g", ents, {}, triples, max_facts=16))
    assert [p.id for p in ps] == ["g:e0:0", "g:e0:1", "g:e0:2"]
    assert sum(len(p.metadata["triples"]) for p in ps) == 39


def test_template_file_validation(tmp_path):
    good = tmp_path / "t.json"
    good.write_text('{"r": "{subject} likes {object}"}')
    assert load_templates(good) == {"r": "{subject} likes {object}"}
    bad = tmp_path / "t.yaml"
    bad.write_text("r: likes without placeholders\n")
    with pytest.raises(IngestError, match="subject"):
        load_templates(bad)


@pytest.fixture(scope="module")
def geo_workspace(tmp_path_factory):
    """A workspace with a KB added, a BM25-only index built over the store (real Lucene)."""
    from kira.config import load_config
    from kira.index_build.build import build_index
    from kira.kb.store import DuckDBStore

    root = tmp_path_factory.mktemp("kbws")
    (root / "facts.tsv").write_text("paris\tcapital_of\tfrance\nberlin\tcapital_of\tgermany\n"
                                    "danube\tflows_through\tvienna\nmozart\tborn_in\tsalzburg\n")
    (root / "tpl.json").write_text('{"born_in": "{subject} was born in {object}"}')
    cfg = load_config(root)
    store = DuckDBStore(cfg.store_path)
    add_kb(store, "geo", "tsv", [str(root / "facts.tsv")], templates=root / "tpl.json")
    version = build_index(cfg, store, dense=False, progress=False)
    yield cfg, store, version
    store.close()


def test_verbalized_passages_appear_in_search_results(geo_workspace):
    from kira.retriever import open_retrievers

    cfg, store, version = geo_workspace
    bm25 = open_retrievers(version, cfg)["bm25"]
    try:
        hits = bm25.search("where was mozart born", k=3)
    finally:
        bm25.close()
    assert hits[0].id == "geo:mozart:0" and "mozart was born in salzburg" in hits[0].text.lower()


class TestKBFactRetrieverContract(RetrieverContract):
    probe_query = "What is paris the capital of?"
    easy_queries = {"Where was mozart born?": "kb:geo:mozart|born_in|salzburg",
                    "berlin is the capital of which country": "kb:geo:berlin|capital_of|germany"}

    @pytest.fixture
    def retriever(self, geo_workspace):
        return KBFactRetriever(geo_workspace[1])
