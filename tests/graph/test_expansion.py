import pytest

from kira.graph.expansion import GraphExpansionRetriever, merge_evidence, neighbourhood_paths
from kira.graph.view import GraphView
from kira.retriever.testing import RetrieverContract
from kira.schema import Evidence, Retriever


def test_linking_uses_kb_linker(geo_store):
    r = GraphExpansionRetriever(geo_store, encoder=None)
    hits = r.search("Where was Wolfgang Amadeus Mozart born?", k=5)
    assert hits and {e.metadata["seed"] for e in hits} == {"mozart"}


def test_neighbourhood_paths_one_and_two_hops(geo_store):
    v = GraphView.from_store(geo_store, "geo")
    paths = neighbourhood_paths(v, v.index["salzburg"], hops=2)
    walks = {tuple(v.node_ids[n] for n in p.nodes) for p in paths}
    assert walks == {("salzburg", "mozart"), ("salzburg", "austria"), ("salzburg", "austria", "vienna")}


@pytest.mark.parametrize("encoder", [None, "tiny-bert"])
def test_expansion_returns_facts_with_provenance(geo_store, tmp_path, encoder):
    r = GraphExpansionRetriever(geo_store, encoder=encoder, cache_dir=tmp_path)
    assert isinstance(r, Retriever) and r.name == "graph"
    hits = r.search("What is the capital of the country where Mozart was born?", k=10)
    assert hits and all(isinstance(e, Evidence) for e in hits)
    assert all(e.kind == "kb_fact" and e.retriever == "graph" and e.metadata["kb"] == "geo" for e in hits)
    by_path = {tuple(e.metadata["path"]): e for e in hits}
    assert ("mozart", "salzburg") in by_path and ("mozart", "salzburg", "austria") in by_path
    two = by_path[("mozart", "salzburg", "austria")]
    assert two.metadata["triples"] == [["mozart", "born_in", "salzburg"], ["salzburg", "located_in", "austria"]]
    assert two.text == "Mozart was born in Salzburg. Salzburg is in Austria."  # the KB's templates
    assert all(e.metadata["seed"] == "mozart" for e in hits)
    if encoder is None:  # token overlap: the path naming "born" outranks the unrelated one
        assert hits[0].metadata["path"][:2] == ["mozart", "salzburg"]
    assert r.search("Nothing here matches anything", k=5) == []


def test_transe_plausibility_is_used(geo_store, tmp_path):
    from kira.kb.embeddings import KGEmbedder

    emb = KGEmbedder("transe", dim=8, epochs=5, device="cpu")
    emb.fit(geo_store.iter_triples("geo"))
    emb.save(tmp_path / "models" / "geo-transe")
    r = GraphExpansionRetriever(geo_store, encoder=None, models_dir=tmp_path / "models")
    assert r.scorer("geo") is not None
    hits = r.search("Mozart", k=3)
    assert len(hits) == 2
    assert all(0.0 <= e.metadata["plausibility"] <= 1.0 for e in hits)
    assert any(e.score != pytest.approx(e.metadata["relevance"] + 0.1) for e in hits)


def test_merge_keeps_provenance():
    text = [Evidence(id="p1", title="a", text="x", score=3.0, retriever="bm25"),
            Evidence(id="p2", title="b", text="y", score=2.0, retriever="bm25")]
    graph = [Evidence(id="g1", title="c", text="z", score=0.9, kind="kb_fact", retriever="graph")]
    merged = merge_evidence(text, graph, k=3)
    assert [e.id for e in merged][:2] in (["p1", "g1"], ["g1", "p1"])
    assert {e.retriever for e in merged} == {"bm25", "graph"}
    assert merged[0].score >= merged[-1].score


def test_text_plus_graph_retriever_fuses(geo_store):
    from kira.graph.expansion import TextPlusGraphRetriever

    graph = GraphExpansionRetriever(geo_store, encoder=None)
    one_hop = GraphExpansionRetriever(geo_store, encoder=None, hops=1)
    one_hop.name = "onehop"
    fused = TextPlusGraphRetriever(one_hop, graph)
    assert fused.name == "onehop+graph"
    q = "What is the country of the place of birth of Mozart?"
    hits = fused.search(q, k=4)
    assert any(e.metadata["hops"] == 2 for e in hits)
    assert fused.batch_search([q], k=4)[0] == hits


def test_relation_mentions_count_longest_names_first():
    from kira.graph.expansion import relation_mentions

    names = ["hypernym", "instance hypernym", "part holonym", "part_meronym"]
    assert relation_mentions("What is the part holonym of the part holonym of Nepal?", names) == 2
    assert relation_mentions("What is the hypernym of the instance hypernym of Paris?", names) == 2
    assert relation_mentions("Which part meronym does a car have?", names) == 1
    assert relation_mentions("Where was Mozart born?", names) == 0


def test_path_naming_the_questions_relations_ranks_first(geo_store):
    """The question spells a two-relation chain: the 2-hop path over exactly those relations wins,
    by a wider margin over the 1-hop fact than text overlap alone gives it."""
    q = "What is the capital of the country of Salzburg?"
    hits = GraphExpansionRetriever(geo_store, encoder=None).search(q, k=5)
    assert hits[0].metadata["path"] == ["salzburg", "austria", "vienna"]
    assert len({e.text for e in hits}) == len(hits)
    off = GraphExpansionRetriever(geo_store, encoder=None, relation_weight=0.0).search(q, k=5)
    assert hits[0].score - hits[1].score > off[0].score - off[1].score + 0.2


class TestGraphExpansionContract(RetrieverContract):
    """Graph expansion runs the same contract as BM25, dense, hybrid and KB facts."""

    probe_query = "Where was Mozart born?"
    easy_queries = {"Where was Mozart born?": "graph:geo:mozart/born_in/salzburg"}
    easy_top = 3

    @pytest.fixture
    def retriever(self, geo_store, tmp_path):
        return GraphExpansionRetriever(geo_store, encoder=None, cache_dir=tmp_path)


def test_a_request_reads_one_version_while_a_kb_is_added(workspace):
    """The pipeline answers from its own version's store snapshot: a KB plugged in (and published)
    while it is in use does not leak into that pipeline's evidence; a pipeline over the new
    version sees it."""
    import json

    from kira.config import load_config
    from kira.index_build.incremental import update_index
    from kira.kb.plugin import add_kb
    from kira.kb.store import DuckDBStore
    from kira.pipeline import QAPipeline
    from kira.schema import Passage

    (workspace / "kira.toml").write_text('[index]\nencoder = "tiny-bert"\n')
    cfg = load_config(workspace)
    with DuckDBStore(cfg.store_path) as store:
        store.add_passages([Passage("t:1", "Vienna", "Vienna is a city on the Danube.", "t")])
        store.register_source("t", "text:jsonl")
        update_index(cfg, store, progress=False)
    old = QAPipeline.from_config(cfg)
    assert old.store.list_kbs() == []
    (workspace / "geo.tsv").write_text("Danube\tflows_through\tVienna\n")
    with DuckDBStore(cfg.store_path) as store:
        add_kb(store, "geo", "tsv", [str(workspace / "geo.tsv")])
        new_version = update_index(cfg, store, progress=False)
    assert old.store.list_kbs() == [] and old._component("kb") is None  # still the old snapshot
    hits, _ = old.retrieve_batch(["What does the Danube flow through?"], k=5, sources="all", method="bm25")
    assert all(json.dumps(e.metadata).find('"kb": "geo"') < 0 for e in hits[0])
    new = QAPipeline.from_config(cfg)
    assert new.index_version == new_version.name and new.store.list_kbs() == ["geo"]
