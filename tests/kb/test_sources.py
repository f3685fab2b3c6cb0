"""Every source type round-trips through add_kb; malformed files are rejected whole, by line."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path

import pytest

from kira.errors import IngestError, KiraError
from kira.kb import registry
from kira.kb.plugin import add_kb, list_kbs, remove_kb

WN = Path("/usr/share/wordnet")


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def counts(store, kb):
    return (len(list(store.iter_entities(kb))), len(store.list_relations(kb)),
            len(list(store.iter_triples(kb))), store.count_passages(kb))


@pytest.fixture
def tsv_kb(tmp_path):
    t = write(tmp_path / "facts.tsv", """
        head\trelation\ttail
        paris\tcapital_of\tfrance
        berlin\tcapital_of\tgermany
        france\tborders\tgermany
        seine\tflows_through\tparis\ttest
        """)
    e = write(tmp_path / "entities.tsv", """
        paris\tParis\tCapital city of France.
        berlin\tBerlin\tCapital of Germany.
        france\tFrance\tA country in western Europe.
        germany\tGermany\tA country in central Europe.
        seine\tSeine\tA river.
        """)
    a = write(tmp_path / "aliases.tsv", "paris\tCity of Light\tParee\nfrance\tFrench Republic\n")
    r = write(tmp_path / "relations.tsv", "capital_of\tcapital of\nborders\tborders\nflows_through\tflows through\n")
    return [str(t), str(e), str(a), str(r)]


def test_tsv_roundtrip_with_side_files(store, tsv_kb):
    rep = add_kb(store, "geo", "tsv", tsv_kb)
    assert (rep.n_entities, rep.n_relations, rep.n_triples) == (5, 3, 4) and rep.version == 1
    assert rep.splits == {"train": 3, "test": 1}
    paris = store.get_entities("geo", ["paris"])[0]
    assert paris.name == "Paris" and paris.aliases == ["City of Light", "Paree"]
    assert paris.description == "Capital city of France."
    assert {(t.head, t.relation, t.tail, t.split) for t in store.iter_triples("geo")} >= {
        ("seine", "flows_through", "paris", "test"), ("paris", "capital_of", "france", "train")}
    assert [r.name for r in store.list_relations("geo")] == ["borders", "capital of", "flows through"]
    src = store.get_source("geo")
    assert src["kind"] == "kb:tsv" and src["version"] == 1 and len(src["checksum"]) == 64
    assert add_kb(store, "geo", "tsv", tsv_kb).version == 2  # re-adding is a new version, not duplicates
    assert counts(store, "geo")[2] == 4
    assert [k["name"] for k in list_kbs(store)] == ["geo"]


def test_csv_with_header_and_implicit_entities(store, tmp_path):
    p = write(tmp_path / "kb.csv", 'head,relation,tail\n"Smith, John",works_for,acme\nacme,located_in,ohio\n')
    rep = add_kb(store, "biz", "csv", [str(p)])
    assert rep.n_entities == 3 and rep.n_triples == 2
    assert store.get_entities("biz", ["Smith, John"])[0].name == "Smith, John"


def test_jsonl_roundtrip(store, tmp_path):
    lines = [{"type": "entity", "id": "Q90", "name": "Paris", "aliases": ["Lutetia"], "description": "city"},
             {"type": "entity", "id": "Q142", "name": "France"},
             {"type": "relation", "id": "P1376", "name": "capital of"},
             {"head": "Q90", "relation": "P1376", "tail": "Q142"},
             {"subject": "Q90", "predicate": "P1376", "object": "Q142", "split": "valid"}]
    p = write(tmp_path / "wd.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n")
    rep = add_kb(store, "wd", "jsonl", [str(p)])
    assert (rep.n_entities, rep.n_relations, rep.n_triples) == (2, 1, 2) and rep.splits == {"train": 1, "valid": 1}
    assert store.get_entities("wd", ["Q90"])[0].aliases == ["Lutetia"]


TTL = """
@prefix ex: <http://example.org/> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
@prefix skos: <http://www.w3.org/2004/02/skos/core#> .
ex:Paris rdfs:label "Paris" ; skos:altLabel "City of Light" ; rdfs:comment "Capital of France." ;
    ex:capitalOf ex:France ; ex:population "2100000" .
ex:France rdfs:label "France" .
"""


@pytest.mark.parametrize("fmt", ["ttl", "nt"])
def test_rdf_roundtrip(store, tmp_path, fmt):
    import rdflib

    ttl = write(tmp_path / "kb.ttl", TTL)
    path = ttl
    if fmt == "nt":
        path = tmp_path / "kb.nt"
        rdflib.Graph().parse(str(ttl), format="turtle").serialize(str(path), format="nt")
    rep = add_kb(store, "rdfkb", "rdf", [str(path)])
    assert rep.n_relations == 2 and rep.n_triples == 2
    paris = store.get_entities("rdfkb", ["http://example.org/Paris"])[0]
    assert paris.name == "Paris" and paris.aliases == ["City of Light"] and paris.description == "Capital of France."
    rels = {r.id: r.name for r in store.list_relations("rdfkb")}
    assert rels["http://example.org/capitalOf"] == "capital of"
    assert store.get_entities("rdfkb", ["literal:2100000"])[0].name == "2100000"


def test_pykeen_bundled_nations(store):
    rep = add_kb(store, "nations", "pykeen", ["nations"])
    assert (rep.n_entities, rep.n_relations, rep.n_triples) == (14, 55, 1992)
    assert rep.splits == {"train": 1592, "valid": 199, "test": 201}


def test_pykeen_directory(store, tmp_path):
    d = tmp_path / "mini"
    write(d / "train.txt", "a\tr\tb\nb\tr\tc\n")
    write(d / "valid.txt", "a\tr\tc\n")
    write(d / "test.txt", "c\tr\ta\n")
    rep = add_kb(store, "mini", "pykeen", [str(d)])
    assert rep.splits == {"train": 2, "valid": 1, "test": 1}


def test_wordnet_synthetic_roundtrip(store, tmp_path):
    write(tmp_path / "data.noun", (
        "  1 license header\n"
        "00000010 05 n 02 dog 0 domestic_dog 0 001 @ 00000020 n 0000 | a domesticated canid; \"the dog barked\"\n"
        "00000020 05 n 01 canine 0 002 ~ 00000010 n 0000 %p 00000030 n 0000 | a carnivore\n"
        "00000030 05 n 01 paw 0 001 #p 00000020 n 0000 | a clawed foot\n"))
    rep = add_kb(store, "wn", "wordnet", [str(tmp_path)], options={"pos": ("n",)})
    assert (rep.n_entities, rep.n_triples) == (3, 4)
    dog = store.get_entities("wn", ["n.00000010"])[0]
    assert dog.name == "dog" and dog.aliases == ["domestic dog"] and dog.description == "a domesticated canid"
    rels = {r.id: r.name for r in store.list_relations("wn")}
    assert rels["@"] == "hypernym" and rels["%p"] == "part meronym" and rels["#p"] == "part holonym"
    text = store.get_passages(["wn:n.00000010:0"])[0].text
    assert text.startswith("dog, domestic dog: a domesticated canid.")  # every lemma, then the gloss
    assert "dog is a kind of canine" in text.lower()


@pytest.mark.skipif(not (WN / "data.adv").exists(), reason="WordNet 3.0 not installed")
def test_wordnet_real_adverbs(store):
    rep = add_kb(store, "wnr", "wordnet", [str(WN)], options={"pos": ("r",)}, verbalize=False)
    assert rep.n_entities == 3621 and rep.n_triples > 0
    assert {r.name for r in store.list_relations("wnr")} >= {"antonym", "hypernym"}


# ---- malformed input: rejected whole, by line, nothing stored ---------------------------------------
def _nothing_stored(store, kb="bad"):
    assert counts(store, kb) == (0, 0, 0, 0) and store.get_source(kb) is None


def test_wrong_column_count_names_line(store, tmp_path):
    p = write(tmp_path / "bad.tsv", "a\tr\tb\nb\tr\tc\nc\tr\n")
    with pytest.raises(IngestError) as e:
        add_kb(store, "bad", "tsv", [str(p)])
    assert e.value.line == 3 and e.value.path.endswith("bad.tsv")
    _nothing_stored(store)


def test_dangling_entity_reference(store, tmp_path, tsv_kb):
    t = write(tmp_path / "more.tsv", "paris\tcapital_of\tfrance\nparis\tcapital_of\tatlantis\n")
    with pytest.raises(IngestError) as e:
        add_kb(store, "bad", "tsv", [str(t), *tsv_kb[1:]])
    assert e.value.line == 2 and e.value.field == "tail" and "atlantis" in str(e.value)
    _nothing_stored(store)


def test_unknown_relation_id(store, tmp_path, tsv_kb):
    t = write(tmp_path / "more.tsv", "paris\tcapital_of\tfrance\nparis\ttwinned_with\tberlin\n")
    with pytest.raises(IngestError) as e:
        add_kb(store, "bad", "tsv", [str(t), *tsv_kb[1:]])
    assert e.value.line == 2 and e.value.field == "relation"
    _nothing_stored(store)


def test_encoding_error_names_line(store, tmp_path):
    p = write(tmp_path / "enc.tsv", b"a\tr\tb\nb\tr\t\xff\xfec\n")
    with pytest.raises(IngestError) as e:
        add_kb(store, "bad", "tsv", [str(p)])
    assert e.value.line == 2 and "UTF-8" in str(e.value)
    _nothing_stored(store)


def test_bad_json_line(store, tmp_path):
    p = write(tmp_path / "x.jsonl", '{"head": "a", "relation": "r", "tail": "b"}\n{"head": "a", \n')
    with pytest.raises(IngestError) as e:
        add_kb(store, "bad", "jsonl", [str(p)])
    assert e.value.line == 2
    _nothing_stored(store)


def test_bad_turtle(store, tmp_path):
    p = write(tmp_path / "x.ttl", "@prefix ex: <http://example.org/> .\nex:a ex:b ex:c .\nex:a ex:b .\n")
    with pytest.raises(IngestError) as e:
        add_kb(store, "bad", "rdf", [str(p)])
    assert e.value.path.endswith("x.ttl")
    _nothing_stored(store)


def test_failed_readd_keeps_previous_version(store, tsv_kb, tmp_path):
    add_kb(store, "geo", "tsv", tsv_kb)
    before = counts(store, "geo")
    bad = write(tmp_path / "bad" / "facts.tsv", "paris\tcapital_of\n")
    with pytest.raises(IngestError):
        add_kb(store, "geo", "tsv", [str(bad), *tsv_kb[1:]], replace=True)
    assert counts(store, "geo") == before and store.get_source("geo")["version"] == 1


# ---- removal and the registry -------------------------------------------------------------------
def test_remove_kb_removes_facts_passages_and_embeddings(store, tsv_kb, tmp_path):
    add_kb(store, "geo", "tsv", tsv_kb)
    models = tmp_path / "models"
    for d, owner in [("geo-transe", "geo"), ("geography-other", "geography"), ("geo-small-transe", "geo-small")]:
        (models / d).mkdir(parents=True)
        (models / d / "kira.json").write_text(json.dumps({"type": "kge", "kb": owner}))
    (models / "geo-notes").mkdir()  # not an artifact: left alone
    removed = remove_kb(store, "geo", models_dir=models)
    # KB geo-small's artifact matches the glob geo-* but is not geo's: it survives
    assert removed == [str(models / "geo-transe")]
    assert all((models / d).exists() for d in ("geography-other", "geo-small-transe", "geo-notes"))
    assert counts(store, "geo") == (0, 0, 0, 0) and store.get_source("geo") is None
    with pytest.raises(KiraError):
        remove_kb(store, "geo")


def test_a_kb_named_like_a_workspace_artifact_never_removes_it(store, tsv_kb, tmp_path):
    """A KB called ``reader`` or ``table`` must not take the default readers or the table parser with it."""
    from kira.artifacts import kb_artifact_dir, role_dir

    add_kb(store, "reader", "tsv", tsv_kb)
    models = tmp_path / "models"
    for role in ("reader-extractive", "reader-fid"):
        role_dir(models, role).mkdir(parents=True)
        (role_dir(models, role) / "kira.json").write_text(json.dumps({"type": "extractive-reader"}))
    assert remove_kb(store, "reader", models_dir=models) == []
    assert role_dir(models, "reader-extractive").exists() and role_dir(models, "reader-fid").exists()
    with pytest.raises(KiraError, match="overwrite"):
        kb_artifact_dir(models, "reader", "fid")


class ListSource:
    """A source defined outside kira's built-ins."""

    def __init__(self, name, paths, **_):
        self.name, self.paths = name, paths

    def iter_records(self):
        from kira.schema import Triple

        for p in self.paths:
            h, r, t = p.split("|")
            yield Triple(self.name, h, r, t)


def test_register_function(store):
    registry.register_source("listy", ListSource)
    try:
        assert "listy" in registry.available()
        rep = add_kb(store, "ls", "listy", ["a|likes|b", "b|likes|c"])
        assert rep.n_triples == 2 and rep.n_entities == 3
    finally:
        registry.unregister_source("listy")
    with pytest.raises(KiraError, match="unknown knowledge source type"):
        add_kb(store, "ls2", "listy", ["a|b|c"])


def test_third_party_entry_point(store, tmp_path, monkeypatch):
    """A fake installed distribution declares a ``kira.sources`` entry point; kira finds it."""
    site = tmp_path / "site"
    write(site / "thirdkb.py", """
        from kira.schema import Entity, Triple

        class PipeSource:
            def __init__(self, name, paths, **_):
                self.name, self.paths = name, paths

            def iter_records(self):
                for line in open(self.paths[0], encoding="utf-8"):
                    h, r, t = line.strip().split("|")
                    yield Entity(h, self.name, h.title())
                    yield Triple(self.name, h, r, t)
                    yield Entity(t, self.name, t.title())
        """)
    dist = site / "thirdkb-0.1.dist-info"
    write(dist / "METADATA", "Metadata-Version: 2.1\nName: thirdkb\nVersion: 0.1\n")
    write(dist / "entry_points.txt", "[kira.sources]\npipe = thirdkb:PipeSource\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "thirdkb", raising=False)
    assert "pipe" in registry.available()
    data = write(tmp_path / "facts.pipe", "ann|knows|bob\n")
    rep = add_kb(store, "third", "pipe", [str(data)])
    assert rep.n_triples == 1 and store.get_entities("third", ["bob"])[0].name == "Bob"


def test_ntriples_syntax_error_names_its_line(store, tmp_path):
    bad = tmp_path / "kb.nt"
    bad.write_text('<http://ex/a> <http://ex/r> <http://ex/b> .\n# a comment\n<http://ex/a> <http://ex/r> "open .\n')
    with pytest.raises(IngestError) as ei:
        add_kb(store, "nt", "rdf", [str(bad)])
    assert ei.value.line == 3 and "kb.nt:3" in str(ei.value)
    assert store.list_kbs() == []
