"""``RetrieverContract``: the behaviour every retriever promises, as a pytest mixin.

A test class inherits it and provides a ``retriever`` fixture (and, optionally, ``easy_queries``:
query → id of the passage that must come back near the top). Every implementation — BM25, dense,
hybrid, KB facts, graph expansion — then runs the same checks, so callers can swap them freely.
"""

from __future__ import annotations

import pytest

from kira.schema import Evidence, Retriever


class RetrieverContract:
    """Inherit and define a ``retriever`` fixture. Override ``easy_queries`` / ``easy_top``, and
    ``retriever_factory`` when a fresh instance is cheaper to make than the shared one."""

    easy_queries: dict[str, str] = {}

    @pytest.fixture
    def retriever_factory(self, retriever):
        """A callable making a fresh retriever for tests that close it (default: a shallow copy)."""
        import copy

        return lambda: copy.copy(retriever)
    easy_top: int = 3
    probe_query: str = "capital city"

    def test_satisfies_protocol(self, retriever):
        assert isinstance(retriever, Retriever)
        assert isinstance(retriever.name, str) and retriever.name

    @pytest.mark.parametrize("k", [1, 3])
    def test_returns_at_most_k(self, retriever, k):
        hits = retriever.search(self.probe_query, k=k)
        assert 0 < len(hits) <= k
        assert all(isinstance(h, Evidence) for h in hits)

    def test_scores_descending(self, retriever):
        hits = retriever.search(self.probe_query, k=10)
        scores = [h.score for h in hits]
        assert scores == sorted(scores, reverse=True)

    def test_ids_unique(self, retriever):
        hits = retriever.search(self.probe_query, k=10)
        assert len({h.id for h in hits}) == len(hits)

    def test_provenance_present(self, retriever):
        for h in retriever.search(self.probe_query, k=5):
            assert h.id and h.text
            assert h.source, f"{h.id} has no source"
            assert h.retriever == retriever.name
            assert h.kind in ("passage", "kb_fact", "table")
            assert isinstance(h.metadata, dict)

    @pytest.mark.parametrize("query", ["", "   "])
    def test_empty_query_returns_nothing(self, retriever, query):
        assert retriever.search(query, k=5) == []

    def test_easy_queries(self, retriever):
        for query, expected in self.easy_queries.items():
            ids = [h.id for h in retriever.search(query, k=self.easy_top)]
            assert expected in ids, f"{retriever.name}: {query!r} → {ids}, expected {expected}"

    def test_batch_search_matches_search(self, retriever):
        queries = [*self.easy_queries, "", self.probe_query][:5]
        batch = retriever.batch_search(queries, k=4)
        assert len(batch) == len(queries)
        for q, hits in zip(queries, batch, strict=True):
            single = retriever.search(q, k=4)
            assert [h.id for h in hits] == [h.id for h in single]
            assert [h.score for h in hits] == pytest.approx([h.score for h in single], rel=2e-2, abs=2e-2)  # bf16 batches

    def test_ties_and_order_are_deterministic(self, retriever):
        first = [(h.id, h.score) for h in retriever.search(self.probe_query, k=10)]
        assert [(h.id, h.score) for h in retriever.search(self.probe_query, k=10)] == first

    def test_close_is_idempotent(self, retriever_factory):
        r = retriever_factory()
        r.close()
        r.close()
