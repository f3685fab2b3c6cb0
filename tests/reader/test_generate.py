"""Unsupervised QA generation from any text (kira.reader.generate), aggregation, calibration and the
pretrain cache, on a small non-WordNet corpus with tiny models."""

from __future__ import annotations

import json

import pytest

from kira.reader import generate as g
from kira.retriever.text import normalize_answer

CORPUS = [
    {"id": "math.gcd", "title": "math.gcd", "text": "gcd(*integers) Return the greatest common divisor of the "
     "integers. If any argument is zero, the result is the other value. Raises TypeError if an argument is not "
     "an integer."},
    {"id": "json.dumps", "title": "json.dumps", "text": "dumps(obj, *, indent=None, sort_keys=False) Serialize obj "
     "to a JSON formatted str. If indent is a non-negative integer, JSON array elements are pretty-printed with "
     "that indent level."},
    {"id": "shutil", "title": "shutil", "text": "Utility functions for copying and archiving files and directory "
     "trees."},
    {"id": "p:sax", "title": "Adolphe Sax", "text": "Adolphe Sax is a Belgian musician who invented the saxophone "
     "(1814-1894). He worked in Paris."},
    {"id": "p:everest", "title": "Mount Everest", "text": "Mount Everest is the highest mountain in the world, in "
     "the Himalaya on the border of Nepal and Tibet; 29,028 feet high."},
    {"id": "p:arno", "title": "Arno", "text": "Arno is a river in central Italy that flows through Florence and "
     "Pisa to the Ligurian Sea."},
    {"id": "p:kitten", "title": "kitten", "text": "kitten, kitty: young domestic cat. Examples: the kitten played "
     "with the yarn"},
]


def _docs():
    return [g.Doc(r["id"], r["title"], r["text"], "toy") for r in CORPUS]


def test_generator_types_answers_and_determinism():
    docs = _docs()
    recs = g.generate(docs, per_passage=6, heldout=0.0, negatives=1, seed=3)
    again = g.generate(docs, per_passage=6, heldout=0.0, negatives=1, seed=3)
    assert recs == again and recs  # deterministic by seed
    assert g.generate(docs, per_passage=6, heldout=0.0, seed=4) != g.generate(docs, per_passage=6, heldout=0.0,
                                                                             seed=3)
    by_doc = {d.id: d for d in docs}
    for r in recs:
        d = by_doc[r["passage_id"]]
        hay = f"{d.title} {d.text}".lower()
        assert all(a.lower() in hay for a in r["answers"]), r  # answers occur in their passage
        q = f" {normalize_answer(r['question'])} "
        assert not any(f" {normalize_answer(a)} " in q for a in r["answers"]), r  # no answer in the question
        assert r["question"].endswith("?") and r["negatives"] and r["negatives"][0]["id"] != d.id
    qs = {(r["passage_id"], r["qtype"], r["wh"], r["answers"][0]) for r in recs}
    # the entity a passage describes is an answer (description -> name), with a wh-word for its type
    assert any(p == "math.gcd" and t == "name" and a == "gcd" for p, t, _, a in qs)
    assert any(p == "shutil" and t == "name" and a == "shutil" for p, t, _, a in qs)
    assert any(p == "p:kitten" and t == "name" and a in ("kitten", "kitty") for p, t, _, a in qs)
    # years -> when, quantities -> how many, code facts -> which exception / default value
    assert ("p:sax", "date", "when", "1814") in qs or ("p:sax", "date", "when", "1894") in qs
    assert any(p == "p:everest" and wh == "how many" and a == "29,028" for p, _, wh, a in qs)
    assert any(t == "exception" and a == "TypeError" for _, t, _, a in qs)
    assert any(t in ("default", "parameter") and p == "json.dumps" for p, t, _, a in qs)
    who = [r for r in recs if r["passage_id"] == "p:sax" and r["qtype"] == "name"]
    assert who and all(r["answer_type"] == "person" for r in who)
    sax_names = [r["question"] for r in who]
    assert all("Adolphe" not in q for q in sax_names)


def test_relation_questions_from_verbalized_kb_passages():
    """KB passages as ``kira kb add`` writes them: relation objects are asked about in several
    phrasings, a relation with many objects is not, and common nouns may take an article."""
    from kira.kb.verbalize import verbalize_kb
    from kira.schema import Entity, Relation, Triple

    ents = {"n.00000001": Entity("n.00000001", "w", "dog", aliases=["domestic dog"], description="a domesticated canid"),
            "n.00000002": Entity("n.00000002", "w", "canine"), "n.00000003": Entity("n.00000003", "w", "pack")}
    ents |= {f"n.0000010{i}": Entity(f"n.0000010{i}", "w", f"breed{i}") for i in range(5)}
    rels = {"@": Relation("@", "w", "hypernym"), "#m": Relation("#m", "w", "member holonym"),
            "~": Relation("~", "w", "hyponym")}
    triples = [Triple("w", "n.00000001", "@", "n.00000002"), Triple("w", "n.00000001", "#m", "n.00000003")]
    triples += [Triple("w", "n.00000001", "~", f"n.0000010{i}") for i in range(5)]
    [p] = [x for x in verbalize_kb("w", ents, rels, triples, {"@": "{subject} is a kind of {object}"})
           if x.title == "dog"]
    doc = g.Doc(p.id, p.title, p.text, "w", "kb_fact", dict(p.metadata))
    assert g.passage_facts(doc)["hypernym"] == ["canine"] and len(g.passage_facts(doc)["hyponym"]) == 5
    recs = g.generate([doc] * 1, per_passage=4, name_share=0.25, heldout=0.0, negatives=0, seed=0)
    rel = [r for r in recs if r["qtype"] == "relation"]
    assert rel and {r["answer_type"] for r in rel} <= {"hypernym", "member holonym"}
    answers = {r["answer_type"]: r["answers"] for r in rel}
    assert answers.get("hypernym", ["canine"]) == ["canine"] and answers.get("member holonym", ["pack"]) == ["pack"]
    phrasings = {g.kb_relation_questions(doc, __import__("random").Random(s), n=1)[0].question for s in range(40)}
    assert len(phrasings) >= 6 and any(q.lower().startswith(("what is a dog", "what sort of thing is a dog",
                                                              "what kind of thing is a dog")) for q in phrasings)


def test_heldout_split_by_passage_and_answer():
    docs = [g.Doc(f"d{i}", f"Thing{i}", f"Thing{i} is a small device made in Town{i} in {1900 + i}.")
            for i in range(200)]
    recs = g.generate(docs, per_passage=2, heldout=0.2, negatives=0, seed=0)
    held = {r["passage_id"] for r in recs if r["split"] == "heldout"}
    train = {r["passage_id"] for r in recs if r["split"] == "train"}
    assert held and train and not held & train
    train_answers = {normalize_answer(r["answers"][0]) for r in recs if r["split"] == "train"}
    assert not train_answers & {normalize_answer(r["answers"][0]) for r in recs if r["split"] == "heldout"}


def test_generate_cli_on_a_jsonl_corpus(tmp_path):
    from typer.testing import CliRunner

    from kira.reader.cli import app

    src = tmp_path / "c.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in CORPUS))
    out = tmp_path / "q.jsonl"
    res = CliRunner().invoke(app, ["generate", "--jsonl", str(src), "--out", str(out), "--heldout", "0"])
    assert res.exit_code == 0, res.output
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert rows and all(r["contexts"][0]["id"] == r["passage_id"] for r in rows)


def test_title_answers_and_aggregation_across_passages():
    from kira.reader.extractive import ExtractiveReader, SpanCandidate, reading_text
    from kira.schema import Evidence

    assert reading_text("math.gcd", "gcd(*integers) Return …") == ("math.gcd | gcd(*integers) Return …", 11)
    assert reading_text("kitten", "kitten, kitty: young cat") == ("kitten, kitty: young cat", 0)
    reader = ExtractiveReader.load("tiny-bert", device="cpu", title_in_passage=True)
    evs = [Evidence(id=f"e{i}", title=t, text=x, score=1.0) for i, (t, x) in
           enumerate([("Arno", "a river in Italy"), ("Florence", "a city on the Arno"), ("Pisa", "a city")])]
    cands = [SpanCandidate(0, 0, 4, "Arno", -0.5), SpanCandidate(1, 12, 16, "Arno", -0.7),
             SpanCandidate(2, 0, 4, "Pisa", -0.2)]
    answers = reader._aggregate("q", cands, {0: 0.3, 1: 0.3, 2: 0.3}, [(0, 0), (0, 1), (0, 2)], evs, 2, False)
    # "Arno" (two passages) outranks "Pisa" (one passage, the best single span)
    assert [a.text for a in answers] == ["Arno", "Pisa"] and len(answers[0].evidence) == 2
    assert answers[0].score == pytest.approx(0.3 * 2.718281828 ** -0.5 + 0.3 * 2.718281828 ** -0.7, rel=1e-4)
    assert answers[0].score > answers[1].score > 0.3 * 2.718281828 ** -0.5  # Pisa's span alone is better
    # the answer type must agree with the wh-word: a "how many" question prefers a number
    nums = [SpanCandidate(0, 0, 4, "Arno", -0.1), SpanCandidate(1, 0, 2, "12", -0.5)]
    top = reader._aggregate("How many bridges?", nums, {0: 0.5, 1: 0.5}, [(0, 0), (0, 1)], evs[:2], 1, False)
    assert top[0].text == "12"
    out = reader.read("which river?", evs, top_n=3)  # end to end: spans map into text or the title (None)
    for a in out:
        if a.span is not None:
            assert a.evidence[0].text[a.span[0]:a.span[1]] == a.text


def test_calibration_and_coverage_curve():
    from kira.reader.calibration import fit_no_answer
    from kira.reader.evaluate import coverage_curve

    scores = [0.9, 0.8, 0.7, 0.6, 0.2, 0.1, 0.05, 0.01] * 3
    correct = [True, True, True, False, False, True, False, False] * 3
    cal = fit_no_answer(scores, correct)
    assert cal.a > 0 and cal.prob_correct(0.9) > 0.5 > cal.prob_correct(0.01)
    curve = coverage_curve(scores, correct, points=(0.25, 1.0))
    assert curve[0]["accuracy"] == 1.0 and curve[1]["accuracy"] == pytest.approx(0.5)


def test_answers_carry_the_calibrated_probability():
    """Users read P(correct), not the raw score: a calibrated reader fills ``probability``, monotone
    in the score; an uncalibrated one leaves it None."""
    from kira.reader.calibration import fit_no_answer
    from kira.reader.extractive import ExtractiveReader
    from kira.schema import Evidence

    reader = ExtractiveReader.load("tiny-bert", device="cpu", max_length=48)
    evs = [Evidence("p1", "Danube", "The Danube flows through Vienna to the Black Sea.", 1.0, retriever="bm25")]
    assert all(a.probability is None for a in reader.read("Where does the Danube flow?", evs, top_n=3))
    reader.calibration = fit_no_answer([0.9, 0.8, 0.1, 0.05] * 4, [True, True, False, False] * 4)
    answers = reader.read("Where does the Danube flow?", evs, top_n=3, allow_no_answer=False)
    assert answers and all(0.0 <= a.probability <= 1.0 for a in answers)
    assert [a.probability for a in answers] == sorted((a.probability for a in answers), reverse=True)


def test_pretrain_cache_round_trip(tmp_path, monkeypatch):
    from kira.reader import pretrain

    monkeypatch.setenv("KIRA_CACHE", str(tmp_path / "cache"))
    recipe = pretrain.PretrainRecipe(base="tiny-bert", steps=2, batch_size=2, max_length=64, freeze_layers=0)
    d = pretrain.ensure_pretrained(recipe, docs=_docs() * 3, log=None)
    assert d == pretrain.pretrained_dir(recipe) and (d / "kira.json").exists()
    assert str(tmp_path / "cache") in str(d) and "gen-" in d.name
    saved = json.loads((d / "kira.json").read_text())
    assert saved["title_in_passage"] and saved["trained_on"]["steps"] == 2

    def boom(*a, **k):
        raise AssertionError("cached: must not train again")

    monkeypatch.setattr("kira.reader.train.train_reader", boom)
    assert pretrain.ensure_pretrained(recipe, docs=_docs(), log=None) == d
    # another recipe (steps) is another cache entry
    assert pretrain.pretrained_dir(pretrain.PretrainRecipe(base="tiny-bert", steps=3)) != d


def test_typed_questions_name_the_answers_class():
    """Entity classes come from KB type relations or, in plain text, a definition's head noun; KB
    relation and place questions then ask "Which <class> …" half of the time."""
    import random

    from kira.kb.verbalize import verbalize_kb
    from kira.schema import Entity, Relation, Triple

    types = g.entity_types(_docs())
    assert types["arno"] == "river" and "math.gcd" not in types  # code documentation is not typed
    ents = {"n.1": Entity("n.1", "w", "retina"), "n.2": Entity("n.2", "w", "eye"),
            "n.3": Entity("n.3", "w", "sense organ"), "n.4": Entity("n.4", "w", "membrane")}
    rels = {"@": Relation("@", "w", "hypernym"), "#p": Relation("#p", "w", "part holonym")}
    triples = [Triple("w", "n.1", "#p", "n.2"), Triple("w", "n.2", "@", "n.3"), Triple("w", "n.1", "@", "n.4")]
    docs = [g.Doc(p.id, p.title, p.text, "w", "kb_fact", dict(p.metadata)) for p in verbalize_kb("w", ents, rels, triples, {})]
    types = g.entity_types(docs)
    assert types["eye"] == "organ" and types["retina"] == "membrane"
    [retina] = [d for d in docs if d.title == "retina"]
    asked = [q for s in range(40) for q in g.kb_relation_questions(retina, random.Random(s), n=2, types=types)]
    part = [q for q in asked if q.answer_type == "part holonym"]
    assert any("organ" in q.question and q.wh == "which" for q in part)
    assert any("organ" not in q.question for q in part)
    assert all(q.answers == ["eye"] for q in part)


def test_no_relation_takes_more_than_its_share():
    """A KB where every entity has a class and a few have a part-of: class questions are capped so
    the reader does not learn to answer the class whatever relation is asked."""
    from collections import Counter

    from kira.kb.verbalize import verbalize_kb
    from kira.schema import Entity, Relation, Triple

    ents = {f"n.{i}": Entity(f"n.{i}", "w", f"thing{i}") for i in range(400)}
    ents |= {f"c.{i}": Entity(f"c.{i}", "w", f"class{i}") for i in range(40)}
    rels = {"@": Relation("@", "w", "hypernym"), "#p": Relation("#p", "w", "part holonym"),
            "#m": Relation("#m", "w", "member holonym")}
    triples = [Triple("w", f"n.{i}", "@", f"c.{i % 40}") for i in range(400)]
    triples += [Triple("w", f"n.{i}", "#p", f"c.{(i + 1) % 40}") for i in range(0, 400, 5)]
    triples += [Triple("w", f"n.{i}", "#m", f"c.{(i + 2) % 40}") for i in range(0, 400, 7)]
    docs = [g.Doc(p.id, p.title, p.text, "w", "kb_fact", dict(p.metadata)) for p in verbalize_kb("w", ents, rels, triples, {})]
    rel = Counter(r["answer_type"] for r in g.generate(docs, per_passage=3, name_share=0.0, heldout=0.0, negatives=0)
                  if r["qtype"] == "relation")
    total = sum(rel.values())
    assert total > 100 and rel["hypernym"] <= total / 3 + 10 and rel["part holonym"] > 0 and rel["member holonym"] > 0
    loose = Counter(r["answer_type"] for r in g.generate(docs, per_passage=3, name_share=0.0, heldout=0.0, negatives=0,
                                                          max_relation_share=1.0) if r["qtype"] == "relation")
    assert loose["hypernym"] > 0.5 * sum(loose.values())  # what the cap prevents


def test_one_question_per_passage_still_mixes_names_and_relations():
    """Large corpora get one question per passage; the name share is drawn per passage, so they are
    not all description -> name questions."""
    from collections import Counter

    from kira.kb.verbalize import verbalize_kb
    from kira.schema import Entity, Relation, Triple

    ents = {f"n.{i}": Entity(f"n.{i}", "w", f"thing{i}", description=f"a small object number {i} made of metal")
            for i in range(200)}
    ents |= {f"c.{i}": Entity(f"c.{i}", "w", f"class{i}") for i in range(20)}
    rels = {"@": Relation("@", "w", "hypernym"), "#p": Relation("#p", "w", "part holonym")}
    triples = [Triple("w", f"n.{i}", "@", f"c.{i % 20}") for i in range(200)]
    triples += [Triple("w", f"n.{i}", "#p", f"c.{(i + 3) % 20}") for i in range(200)]
    docs = [g.Doc(p.id, p.title, p.text, "w", "kb_fact", dict(p.metadata)) for p in verbalize_kb("w", ents, rels, triples, {})]
    kinds = Counter(r["qtype"] for r in g.generate(docs, per_passage=1, name_share=0.5, heldout=0.0, negatives=0))
    assert kinds["name"] > 40 and kinds["relation"] > 40
