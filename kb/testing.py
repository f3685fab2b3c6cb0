"""Contract tests every knowledge-store backend, knowledge source and KB embedder runs, as pytest
mixins (Haystack-style).

``StoreContract``: a new store backend passes the same contract as the DuckDB one::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self, tmp_path):
            return MyStore(...)

``KnowledgeSourceContract``: a test class provides ``source`` (a ready source) and ``bad_source``
(the same type over a file with one malformed line, and that line's number). Every source type --
built in or a plug-in registered under ``kira.sources`` -- then shows that ``kira kb add`` can rely on
it: typed records with their file and line, deterministic order, no dangling references after
``collect``, and errors that name file and line.

``KBEmbedderContract``: a test class provides ``embedder_factory`` (an untrained embedder) and
gets checks of fit / score / rank_tails / save-load on a small KB.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from kira.errors import IngestError, KiraError
from kira.schema import Entity, KBEmbedder, KnowledgeSource, Passage, Relation, Triple


def _passages(n: int, source: str = "s1") -> list[Passage]:
    return [Passage(id=f"{source}:{i}", title=f"T{i}", text=f"text number {i}", source=source,
                    metadata={"i": i}) for i in range(n)]


class StoreContract:
    """Every ``KnowledgeStore`` must pass these. Subclasses provide a ``store`` fixture."""

    def test_passages_round_trip(self, store):
        store.add_passages(_passages(5))
        assert store.count_passages() == 5
        got = store.get_passages(["s1:3", "s1:0", "missing"])
        assert [p.id for p in got] == ["s1:3", "s1:0"]
        assert got[0].metadata == {"i": 3} and got[0].title == "T3"

    def test_add_replaces_by_id(self, store):
        store.add_passages(_passages(3))
        store.add_passages([Passage(id="s1:1", title="new", text="changed", source="s1")])
        assert store.count_passages() == 3
        assert store.get_passages(["s1:1"])[0].text == "changed"

    def test_iter_passages_is_batched_and_ordered(self, store):
        store.add_passages(_passages(25))
        batches = list(store.iter_passages(batch_size=10))
        assert [len(b) for b in batches] == [10, 10, 5]
        ids = [p.id for b in batches for p in b]
        assert ids == sorted(ids)

    def test_transaction_rolls_back_on_ingest_error(self, store):
        store.add_passages(_passages(2, "keep"))
        with pytest.raises(IngestError, match=r"bad\.jsonl:7 \(field 'text'\)"), store.transaction():
            store.register_source("bad", "jsonl", "bad.jsonl")
            store.add_passages(_passages(4, "bad"))
            store.add_entities([Entity("e1", "bad", "E one")])
            raise IngestError("bad.jsonl", 7, "text", "missing")
        assert store.count_passages() == 2
        assert store.count_passages("bad") == 0
        assert store.get_source("bad") is None
        assert list(store.iter_entities("bad")) == []

    def test_kb_records_round_trip(self, store):
        store.add_entities([Entity("q1", "kb", "Paris", ["City of Light"], "capital of France"),
                            Entity("q2", "kb", "France", [], "a country")])
        store.add_relations([Relation("capital_of", "kb", "capital of")])
        store.add_triples([Triple("kb", "q1", "capital_of", "q2"), Triple("kb", "q2", "capital_of", "q1", "test")])
        assert [e.name for e in store.get_entities("kb", ["q2", "q1"])] == ["France", "Paris"]
        assert store.find_entities("city of light")[0].id == "q1"
        assert store.find_entities("paris")[0].id == "q1"
        assert len(list(store.iter_triples("kb"))) == 2
        assert len(list(store.iter_triples("kb", split="test"))) == 1
        assert {t.tail for t in store.triples_about("kb", "q1")} == {"q2", "q1"}
        many = store.triples_about_many("kb", ["q1", "q2", "nobody", "q1"])
        assert set(many) == {"q1", "q2", "nobody"} and many["nobody"] == []
        assert many["q1"] == store.triples_about("kb", "q1") and len(many["q2"]) == 2
        assert store.list_kbs() == ["kb"]
        assert [r.name for r in store.list_relations("kb")] == ["capital of"]

    def test_remove_source_removes_everything_it_added(self, store):
        store.register_source("kb", "tsv", "x.tsv")
        store.add_passages(_passages(3, "kb"))
        store.add_entities([Entity("q1", "kb", "Paris")])
        store.add_triples([Triple("kb", "q1", "r", "q1")])
        store.add_table("cities", pd.DataFrame({"name": ["Paris"], "pop": [2.1]}), source="kb")
        store.add_passages(_passages(2, "other"))
        store.remove_source("kb")
        assert store.count_passages() == 2
        assert list(store.iter_entities("kb")) == [] and list(store.iter_triples("kb")) == []
        assert store.list_tables() == []
        assert store.get_source("kb") is None

    def test_source_versions_increase(self, store):
        assert store.register_source("s", "jsonl") == 1
        assert store.register_source("s", "jsonl") == 2
        assert store.get_source("s")["version"] == 2

    def test_tables_round_trip(self, store):
        df = pd.DataFrame({"country": ["France", "Peru"], "population": [68.0, 34.0],
                           "year": pd.to_datetime(["2023-01-01", "2023-01-01"])})
        store.add_table("countries", df, caption="Countries", source="t",
                        original_columns=["Country", "Population", "Year"])
        (cat,) = store.list_tables()
        assert cat["name"] == "countries" and cat["n_rows"] == 2
        assert cat["original_columns"] == ["Country", "Population", "Year"]
        assert cat["types"][1] == "DOUBLE" and cat["types"][2].startswith("TIMESTAMP")
        assert store.get_table("countries")["population"].sum() == 102.0

    def test_index_versions_recorded(self, store):
        store.record_index_version("v0001", "published", {"passages": 3})
        (v,) = store.list_index_versions()
        assert v["version"] == "v0001" and v["manifest"] == {"passages": 3}


class KnowledgeSourceContract:
    """Inherit and define ``source`` and ``bad_source`` (→ ``(source, bad line number)``) fixtures."""

    def test_satisfies_protocol(self, source):
        assert isinstance(source, KnowledgeSource)
        assert isinstance(source.name, str) and source.name

    def test_records_are_typed_and_located(self, source):
        from kira.kb.sources import origin

        recs = list(source.iter_records())
        assert any(isinstance(r, Triple) for r in recs)
        for r in recs:
            assert isinstance(r, Entity | Relation | Triple)
            assert r.kb == source.name
            path, _ = origin(r)
            if not isinstance(r, Relation):  # a source's built-in relation vocabulary has no file line
                assert path != "<unknown>", f"{r} does not say which file it came from"
        for t in (r for r in recs if isinstance(r, Triple)):
            assert t.head and t.relation and t.tail and t.split in ("train", "valid", "test")

    def test_deterministic(self, source):
        assert list(source.iter_records()) == list(source.iter_records())

    def test_collects_without_dangling_references(self, source):
        from kira.kb.plugin import collect

        kb = collect(source, source.name)
        assert kb.triples
        for t in kb.triples:
            assert t.head in kb.entities and t.tail in kb.entities and t.relation in kb.relations

    def test_bad_line_names_file_and_line(self, bad_source):
        src, line = bad_source
        with pytest.raises(IngestError) as e:
            list(src.iter_records())
        assert e.value.line == line and e.value.path, str(e.value)


SMALL_KB = [("paris", "capital_of", "france"), ("berlin", "capital_of", "germany"), ("rome", "capital_of", "italy"),
            ("france", "borders", "germany"), ("germany", "borders", "france"), ("italy", "borders", "france"),
            ("france", "borders", "italy"), ("madrid", "capital_of", "spain"), ("spain", "borders", "france")]


class KBEmbedderContract:
    """Inherit and define ``embedder_factory`` (a callable returning an untrained embedder)."""

    @pytest.fixture
    def triples(self):
        return [Triple("toy", h, r, t) for h, r, t in SMALL_KB]

    @pytest.fixture
    def fitted(self, embedder_factory, triples):
        emb = embedder_factory()
        emb.fit(triples)
        return emb

    def test_satisfies_protocol(self, embedder_factory):
        assert isinstance(embedder_factory(), KBEmbedder)

    def test_fit_refuses_no_triples(self, embedder_factory):
        with pytest.raises(KiraError):
            embedder_factory().fit([])

    def test_scores_are_finite_one_per_triple(self, fitted):
        s = fitted.score(np.array(["paris", "rome"]), np.array(["capital_of", "capital_of"]), np.array(["france", "italy"]))
        assert s.shape == (2,) and np.isfinite(s).all()

    def test_rank_tails_best_first_within_k(self, fitted):
        ranked = fitted.rank_tails("paris", "capital_of", k=3)
        assert 0 < len(ranked) <= 3
        assert [s for _, s in ranked] == sorted((s for _, s in ranked), reverse=True)
        assert len({e for e, _ in ranked}) == len(ranked)

    def test_unknown_entity_is_a_clear_error(self, fitted):
        with pytest.raises(KiraError):
            fitted.rank_tails("atlantis", "capital_of", k=3)

    def test_save_load_round_trip(self, fitted, tmp_path):
        from kira import artifacts

        d = fitted.save(tmp_path / "emb")
        assert artifacts.read_config(d)["kb"] == "toy"  # removed with its KB (kira.artifacts.kb_artifact_dirs)
        again = artifacts.load(d, device="cpu")
        h, r, t = np.array(["paris"]), np.array(["capital_of"]), np.array(["france"])
        assert again.score(h, r, t) == pytest.approx(fitted.score(h, r, t), rel=1e-4, abs=1e-5)
        assert [e for e, _ in again.rank_tails("paris", "capital_of", k=3)] == \
               [e for e, _ in fitted.rank_tails("paris", "capital_of", k=3)]
