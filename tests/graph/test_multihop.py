import json

import pytest

from kira.errors import IngestError
from kira.graph.expansion import GraphExpansionRetriever
from kira.graph.multihop import compare_retrieval, generate_questions, questions_from_store
from kira.graph.view import GraphView
from kira.jsonl import write_jsonl
from kira.schema import BaseRetriever


def test_default_template_answers_are_two_hop_ends(geo_store):
    rows = questions_from_store(geo_store, "geo")
    by_q = {r["question"]: r for r in rows}
    q = by_q["What is the country of the place of birth of Mozart?"]
    assert q["answers"] == ["Austria", "Republic of Austria"]
    assert q["path"] == ["mozart", "born_in", "salzburg", "located_in", "austria"]
    assert by_q["What is the capital of the country of Salzburg?"]["answers"] == ["Vienna", "Wien"]
    assert by_q["What is the capital of the country of Ulm?"]["answers"] == ["Berlin"]
    # every generated answer is really reachable by the two relations it names
    v = GraphView.from_store(geo_store, "geo")
    edges = {(v.node_ids[h], v.relation_ids[r], v.node_ids[t]) for h, r, t in zip(v.heads, v.rels, v.tails, strict=True)}
    for row in rows:
        x, r1, y, r2, z = row["path"]
        assert (x, r1, y) in edges and (y, r2, z) in edges and x != z
    # mozart, einstein (born_in/located_in); salzburg, ulm (located_in/capital); danube (flows_through/located_in)
    assert len(rows) == 5


def test_path_templates_and_limits(geo_store, tmp_path):
    v = GraphView.from_store(geo_store, "geo")
    tpl = {"born_in/located_in": "In which country was {x} born?",
           "located_in/capital": "What is the capital of the country {x} is in?"}
    rows = generate_questions(v, templates=tpl)
    assert {r["question"] for r in rows} == {"In which country was Mozart born?", "In which country was Einstein born?",
                                             "What is the capital of the country Salzburg is in?",
                                             "What is the capital of the country Ulm is in?"}
    assert len(generate_questions(v, max_per_pair=1)) == 3
    assert generate_questions(v, relations=["capital"]) == []
    out = tmp_path / "q.jsonl"
    assert write_jsonl(out, rows) == 4
    assert all({"question", "answers"} <= set(json.loads(line)) for line in out.read_text().splitlines())
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"born_in/located_in": "no placeholder"}))
    with pytest.raises(IngestError, match="born_in/located_in"):
        generate_questions(v, templates=bad)


class OneHopOnly(GraphExpansionRetriever):
    """A real retriever restricted to single facts: what a passage-per-fact text index gives."""

    name = "onehop"

    def search(self, query, k=10):
        return [e for e in super().search(query, k=50) if e.metadata["hops"] == 1][:k]


def test_compare_shows_two_hop_gain(geo_store):
    rows = questions_from_store(geo_store, "geo")
    one = OneHopOnly(geo_store, encoder=None, hops=1)
    two = GraphExpansionRetriever(geo_store, encoder=None, hops=2)
    res = compare_retrieval(rows, one, two, k=3)
    assert res["n"] == 5
    assert res["text+graph"]["recall@3"] >= res["text"]["recall@3"]
    assert res["graph"]["recall@3"] == 1.0


def test_heldout_split_is_by_start_entity():
    from kira.graph.multihop import split_by_start_entity

    rows = [{"question": f"q{i}", "path": [f"x{i % 10}", "r", "y", "s", "z"]} for i in range(40)]
    out = split_by_start_entity(rows, 0.3, seed=1)
    held = {r["path"][0] for r in out if r["split"] == "heldout"}
    assert len(held) == 3 and all(r["split"] == "train" for r in out if r["path"][0] not in held)
    assert split_by_start_entity(rows, 0.3, seed=1) == out and len(out) == len(rows)


class _NoText(BaseRetriever):
    """A text retriever over an empty corpus (the toy KB has no text passages)."""

    name = "none"

    def search(self, query: str, k: int = 10) -> list:
        return []


def test_default_reader_data_includes_multihop_questions_with_graph_evidence(geo_workspace, tmp_path):
    from kira.kb.store import DuckDBStore
    from kira.reader.defaults import _multihop_contexts

    with DuckDBStore(geo_workspace.store_path) as store:
        rows = _multihop_contexts(geo_workspace, store, "geo", _NoText(), 50, tmp_path, log=None)
    written = [json.loads(line) for line in (tmp_path / "geo-multihop-questions.jsonl").read_text().splitlines()]
    assert written and {r["split"] for r in written} <= {"train", "heldout"}
    assert rows and all(r["split"] == "train" and r["contexts"] for r in rows)
    answered = [any(a in " ".join(c["text"] for c in r["contexts"]) for a in r["answers"]) for r in rows]
    assert all(answered)  # graph expansion brings the two-hop answer into the reader's evidence
