"""Fusion math on hand-computed examples, and agreement with pyserini's HybridSearcher."""

import pytest

from kira.retriever.fusion import linear_scores, rank, rrf_scores
from kira.retriever.hybrid import fuse
from kira.schema import Evidence


def test_rrf_hand_computed():
    s = rrf_scores([["a", "b", "c"], ["c", "a"]], rrf_k=60)
    assert s["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert s["b"] == pytest.approx(1 / 62)
    assert s["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert [d for d, _ in rank(s, 3)] == ["a", "c", "b"]


def test_linear_hand_computed_missing_doc_gets_list_minimum():
    sparse = {"a": 10.0, "b": 6.0, "c": 2.0}
    dense = {"a": 0.5, "d": 0.9, "c": 0.7}
    got = linear_scores(sparse, dense, alpha=0.5)
    # sparse normalised: a=1, b=0.5, c=0; dense normalised: a=0, c=0.5, d=1
    # b is missing from dense → dense min (0.5) → 0; d missing from sparse → sparse min (2) → 0
    assert got == pytest.approx({"a": 0.5 * 1 + 0.0, "b": 0.5 * 0.5 + 0.0, "c": 0.0 + 0.5, "d": 0.0 + 1.0})
    w = linear_scores(sparse, dense, alpha=0.5, weight_on_dense=True)
    assert w["a"] == pytest.approx(1 + 0.5 * 0)
    raw = linear_scores(sparse, dense, alpha=0.1, normalize=False)
    assert raw["b"] == pytest.approx(0.1 * 6.0 + 0.5)  # unnormalised: missing dense → min 0.5


def test_linear_matches_pyserini_hybrid_ranking():
    from kira.jvm import ensure_java

    ensure_java()
    from pyserini.search.hybrid import HybridSearcher

    class Hit:
        def __init__(self, docid, score):
            self.docid, self.score = docid, score

    sparse = {"a": 12.5, "b": 9.0, "c": 7.25, "e": 3.0}
    dense = {"b": 81.0, "c": 80.5, "d": 79.0, "f": 70.0}
    for alpha in (0.1, 0.5, 2.0):
        for norm in (True, False):
            ref = HybridSearcher._hybrid_results([Hit(*kv) for kv in dense.items()],
                                                 [Hit(*kv) for kv in sparse.items()], alpha, 6, norm)
            ours = linear_scores(sparse, dense, alpha, normalize=norm)
            shift = (alpha + 1) * 0.5 if norm else 0.0  # pyserini centres normalised scores
            # compare the full score maps: the order of exact ties is arbitrary in pyserini (a set)
            assert ours == pytest.approx({h.docid: h.score + shift for h in ref})


def _ev(i, score, name):
    return Evidence(id=i, title=i.upper(), text=f"text {i}", score=score, source="s", retriever=name)


def test_fuse_keeps_provenance_and_records_both_sides():
    sparse = [_ev("a", 3.0, "bm25"), _ev("b", 2.0, "bm25")]
    dense = [_ev("b", 0.9, "dense"), _ev("c", 0.1, "dense")]
    out = fuse(sparse, dense, k=2, method="rrf")
    assert [e.id for e in out] == ["b", "a"]
    b = out[0]
    assert b.retriever == "hybrid" and b.source == "s" and b.text == "text b"
    assert b.metadata["bm25_rank"] == 2 and b.metadata["dense_rank"] == 1
    assert b.metadata["dense_score"] == 0.9 and b.metadata["rank"] == 1
    assert "dense_rank" not in out[1].metadata
    with pytest.raises(ValueError):
        fuse(sparse, dense, k=2, method="borda")


def test_fuse_resolves_bare_hits_only_for_the_final_top_k():
    asked = []

    def resolve(ids):
        asked.append(list(ids))
        return {i: _ev(i, 0.0, "dense") for i in ids}

    sparse = [_ev("a", 3.0, "bm25"), _ev("b", 2.0, "bm25")]
    dense = [("c", 0.9), ("b", 0.8), ("d", 0.1)]
    out = fuse(sparse, dense, k=3, method="rrf", resolve=resolve)
    assert [e.id for e in out] == ["b", "a", "c"]  # b: 1/62+1/62 > a: 1/61 > c: 1/61 (ties keep order)
    assert asked == [["c"]]  # d never fetched; b came with its BM25 evidence
    assert out[2].text == "text c" and out[2].metadata["dense_rank"] == 1
    with pytest.raises(ValueError, match="no resolve"):
        fuse(sparse, dense, k=3)
