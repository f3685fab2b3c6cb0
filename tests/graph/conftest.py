"""A toy geography KB for the graph tests (entities, typed edges, aliases)."""

from __future__ import annotations

import pytest

from kira.schema import Entity, Relation, Triple

KB = "geo"
ENTITIES = [
    ("mozart", "Mozart", ["Wolfgang Amadeus Mozart"], "composer of the Classical period"),
    ("einstein", "Einstein", [], "physicist who developed relativity"),
    ("salzburg", "Salzburg", [], "city in Austria on the Salzach"),
    ("ulm", "Ulm", [], "city in Baden-Wuerttemberg on the Danube"),
    ("austria", "Austria", ["Republic of Austria"], "country in Central Europe"),
    ("germany", "Germany", [], "country in Central Europe"),
    ("vienna", "Vienna", ["Wien"], "capital city of Austria"),
    ("berlin", "Berlin", [], "capital city of Germany"),
    ("danube", "Danube", [], "river of Central Europe"),
]
RELATIONS = [("born_in", "place of birth"), ("located_in", "country"), ("capital", "capital"),
             ("flows_through", "flows through")]
TRIPLES = [
    ("mozart", "born_in", "salzburg"), ("einstein", "born_in", "ulm"),
    ("salzburg", "located_in", "austria"), ("ulm", "located_in", "germany"),
    ("austria", "capital", "vienna"), ("germany", "capital", "berlin"),
    ("danube", "flows_through", "vienna"), ("danube", "flows_through", "ulm"),
]
TEMPLATES = {"born_in": "{subject} was born in {object}", "located_in": "{subject} is in {object}",
             "capital": "The capital of {subject} is {object}"}


def fill(store) -> None:
    with store.transaction():
        store.add_entities(Entity(i, KB, n, a, d) for i, n, a, d in ENTITIES)
        store.add_relations(Relation(i, KB, n) for i, n in RELATIONS)
        store.add_triples(Triple(KB, h, r, t) for h, r, t in TRIPLES)
        store.register_source(KB, "kb:test", metadata={"kind": "kb", "templates": TEMPLATES})


@pytest.fixture
def geo_store(store):
    fill(store)
    return store


@pytest.fixture
def geo_workspace(workspace):
    """A workspace whose store holds the toy KB."""
    from kira.config import load_config
    from kira.kb.store import DuckDBStore

    cfg = load_config(workspace)
    with DuckDBStore(cfg.store_path) as s:
        fill(s)
    return cfg
