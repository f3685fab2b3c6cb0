"""Contracts every knowledge source and every KB embedder promises, as pytest mixins.

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
import pytest

from kira.errors import IngestError, KiraError
from kira.schema import Entity, KBEmbedder, KnowledgeSource, Relation, Triple


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
