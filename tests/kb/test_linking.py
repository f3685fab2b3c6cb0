"""Entity linking by alias with normalisation, embedding disambiguation, KB facts as evidence."""

from __future__ import annotations

import numpy as np
import pytest

from kira.kb.linking import EntityLinker, KBFactRetriever, normalize
from kira.kb.plugin import add_kb
from kira.schema import Retriever


@pytest.fixture
def geo(store, tmp_path):
    (tmp_path / "facts.tsv").write_text(
        "paris\tcapital_of\tfrance\nberlin\tcapital_of\tgermany\nbank_river\tpart_of\triver\n"
        "bank_money\tlends\tmoney\nunited_states\tborders\tcanada\n")
    (tmp_path / "entities.tsv").write_text(
        "paris\tParis\tcapital city of France\nberlin\tBerlin\tcapital of Germany\nfrance\tFrance\tcountry\n"
        "germany\tGermany\tcountry\nbank_river\tbank\tsloping land beside a body of water such as a river\n"
        "bank_money\tbank\tfinancial institution that accepts deposits and lends money\n"
        "river\triver\ta large natural stream of water\nmoney\tmoney\tcurrency\n"
        "united_states\tUnited States\tcountry in North America\ncanada\tCanada\tcountry in North America\n")
    (tmp_path / "aliases.tsv").write_text("united_states\tU.S.A.\tUSA\nparis\tCity of Light\n")
    (tmp_path / "templates.yaml").write_text('capital_of: "{subject} is the capital of {object}"\n')
    add_kb(store, "geo", "tsv", [str(tmp_path / f) for f in ("facts.tsv", "entities.tsv", "aliases.tsv")],
           templates=tmp_path / "templates.yaml")
    return store


def test_normalize():
    assert normalize("The Cities!") == "the city" and normalize("U.S.A.") == "u s a"
    assert normalize("boxes") == "box" and normalize("glass") == "glass"


def test_links_by_alias_with_normalisation(geo):
    linker = EntityLinker(geo)
    got = {(x.mention, x.entity_id) for x in linker.link("Which river flows through the city of light?")}
    assert ("city of light", "paris") in got and ("river", "river") in got
    assert [x.entity_id for x in linker.link("What does the U.S.A. border?")] == ["united_states"]
    assert [x.entity_id for x in linker.link("tell me about usa")] == ["united_states"]
    assert linker.link("nothing to see here") == []


class BagOfWordsEncoder:
    """A real (if simple) encoder: hashed bag of words, so disambiguation is testable without a PLM."""

    dim = 256

    def encode(self, texts, batch_size=64):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in normalize(t).split():
                out[i, hash(w) % self.dim] += 1
        return out


def test_embedding_similarity_disambiguates(geo):
    linker = EntityLinker(geo, encoder=BagOfWordsEncoder())
    money = [x for x in linker.link("Which bank lends money and accepts deposits?") if x.mention == "bank"]
    water = [x for x in linker.link("Is the bank beside the water sloping land?") if x.mention == "bank"]
    assert money[0].entity_id == "bank_money" and water[0].entity_id == "bank_river"


class CountingEncoder(BagOfWordsEncoder):
    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts, batch_size=64):
        self.seen += list(texts)
        return super().encode(texts, batch_size)


def test_candidates_ranked_by_stored_passage_vectors_encode_only_the_question(geo):
    from kira.kb.verbalize import entity_passage_id

    enc = CountingEncoder()
    stored = {entity_passage_id("geo", e): enc.encode([t])[0] / np.linalg.norm(enc.encode([t])[0])
              for e, t in [("bank_money", "bank: financial institution lends money deposits"),
                           ("bank_river", "bank: sloping land beside water river")]}
    enc.seen.clear()
    asked: list[list[str]] = []
    linker = EntityLinker(geo, encoder=enc)
    linker.use_passage_vectors(lambda ids: asked.append(ids) or {i: stored[i] for i in ids if i in stored})
    money = [x for x in linker.link("Which bank lends money and accepts deposits?") if x.mention == "bank"]
    assert money[0].entity_id == "bank_money"
    assert enc.seen == ["Which bank lends money and accepts deposits?"]  # no candidate text encoded
    assert sorted(asked[0]) == sorted(stored)


def test_kb_fact_retriever_returns_provenance(geo):
    ret = KBFactRetriever(geo)
    assert isinstance(ret, Retriever) and ret.name == "kb"
    hits = ret.search("What is Paris the capital of?", k=5)
    assert hits and hits[0].kind == "kb_fact" and hits[0].retriever == "kb"
    assert hits[0].text == "Paris is the capital of France."  # the KB's own template
    assert hits[0].metadata["triples"] == [["paris", "capital_of", "france"]]
    assert hits[0].metadata["kb"] == "geo" and hits[0].metadata["entity"] == "paris"
    assert ret.search("unrelated words only", k=5) == []
