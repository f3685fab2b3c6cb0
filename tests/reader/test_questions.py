"""Question generator over a toy KB, templates file errors, cloze questions, EM/F1 and baselines."""

from __future__ import annotations

import json

import pytest

from kira.errors import IngestError
from kira.reader.evaluate import most_frequent_entity, score
from kira.reader.questions import (
    cloze_questions,
    heldout_split,
    load_templates,
    questions_from_kb,
    questions_from_passages,
    read_questions,
    write_questions,
)
from kira.schema import Entity, Evidence, Passage, Relation, Triple

ANIMALS = [("dog", "canine", ["domestic dog"]), ("wolf", "canine", []), ("trout", "fish", ["brook trout"]),
           ("salmon", "fish", []), ("oak", "tree", ["oak tree"]), ("maple", "tree", []),
           ("rose", "shrub", []), ("eagle", "bird", ["bald eagle"]), ("sparrow", "bird", [])]


def toy_kb(store, kb: str = "toy") -> None:
    names = {n for a, h, _ in ANIMALS for n in (a, h)}
    aliases = {a: al for a, _, al in ANIMALS}
    store.add_entities(Entity(id=f"e:{n}", kb=kb, name=n, aliases=aliases.get(n, []), description=f"a {n}")
                       for n in sorted(names))
    store.add_entities([Entity(id="e:bank1", kb=kb, name="bank"), Entity(id="e:bank2", kb=kb, name="bank")])
    store.add_relations([Relation(id="@", kb=kb, name="hypernym"), Relation(id="mystery", kb=kb, name="likes")])
    store.add_triples([Triple(kb, f"e:{a}", "@", f"e:{h}") for a, h, _ in ANIMALS]
                      + [Triple(kb, "e:dog", "mystery", "e:oak"), Triple(kb, "e:bank1", "@", "e:tree")])


def test_kb_questions_templates_aliases_and_subject_split(store):
    toy_kb(store)
    qs = questions_from_kb(store, "toy", heldout=0.3)
    by = {(q["subject_name"], q["relation"]): q for q in qs}
    assert ("bank", "hypernym") not in by  # ambiguous subject name: skipped
    dog = by[("dog", "hypernym")]
    assert dog["answers"] == ["canine"] and dog["synthetic"] and "dog" in dog["question"]
    assert dog["question"] in [t.format(subject="dog") for t in load_templates(None)["hypernym"]]
    # several phrasings are in use for one relation
    assert len({q["question"].replace(q["subject_name"], "X") for q in qs if q["relation"] == "hypernym"}) > 1
    # generic fallback for an unknown relation
    assert by[("dog", "likes")]["question"] in {"What is the likes of dog?", "Dog has which likes?",
                                                "Which entity is the likes of dog?"}
    # the reverse direction gives aliases as answers: trees' hypernym question is not there, but
    # oak's object 'tree' has no aliases; an object with aliases carries them
    store.add_triples([Triple("toy", "e:canine", "@", "e:dog")])
    canine = {q["subject_name"]: q for q in questions_from_kb(store, "toy")}["canine"]
    assert canine["answers"] == ["dog", "domestic dog"]
    # split is by subject: every question about one subject lands in the same split
    splits = {}
    for q in qs:
        splits.setdefault(q["subject"], set()).add(q["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {q["split"] for q in qs} == {"train", "heldout"}
    assert heldout_split("e:dog", 0.3) == heldout_split("e:dog", 0.3)


def test_custom_templates_file_and_errors(store, tmp_path):
    toy_kb(store)
    good = tmp_path / "t.yaml"
    good.write_text("hypernym:\n  - 'Which category does {subject} fall under?'\nlikes: 'What does {subject} like?'\n")
    tpl = load_templates(good)
    qs = {q["subject_name"] + "|" + q["relation"]: q["question"] for q in questions_from_kb(store, "toy", tpl)}
    assert qs["dog|hypernym"] == "Which category does dog fall under?"
    assert qs["dog|likes"] == "What does dog like?"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hypernym": ["no placeholder here"]}))
    with pytest.raises(IngestError) as e:
        load_templates(bad)
    assert "bad.json" in str(e.value) and "hypernym" in str(e.value)


def test_cloze_and_text_questions(store, tiny_passages):
    qa = dict(cloze_questions("Paris", "Paris is the capital and most populous city of France, on the river Seine."))
    assert qa["Paris is the capital and most populous city of what, on the river Seine?"] == "France"
    store.add_passages(tiny_passages)
    qs = questions_from_passages(store)
    assert qs and all(q["answers"][0] in p.text for q in qs for p in tiny_passages if p.id == q["passage_id"])


def test_read_questions_names_file_line_and_field(tmp_path):
    p = tmp_path / "q.jsonl"
    write_questions([{"question": "a?", "answers": ["b"]}, {"question": "c?", "answers": "d"}], p)
    assert [r["answers"] for r in read_questions(p)] == [["b"], ["d"]]
    p.write_text('{"question": "a?", "answers": ["b"]}\n{"question": "", "answers": ["x"]}\n')
    with pytest.raises(IngestError, match=r"q.jsonl:2 \(field 'question'\)"):
        read_questions(p)
    p.write_text('{"question": "a?", "answers": []}\n')
    with pytest.raises(IngestError, match=r":1 \(field 'answers'\)"):
        read_questions(p)
    p.write_text('{"question": "a?", "answers": ["b"], "contexts": [{"title": "t"}]}\nnot json\n')
    with pytest.raises(IngestError, match="contexts"):
        read_questions(p)


def test_em_f1_on_hand_examples_and_baselines():
    s = score(["The Eiffel Tower", "Paris, France", "", "blue whale"],
              [["Eiffel tower"], ["Paris"], ["x"], ["the blue whale", "whale"]])
    assert s["em"] == pytest.approx(2 / 4)
    assert s["f1"] == pytest.approx((1 + 2 / 3 + 0 + 1) / 4)
    ev = [Evidence(id="1", title="dog", score=1.0,
                   text="dog: a canid. dog, hypernym: canine, part meronym: flag, hypernym: canine.")]
    assert most_frequent_entity("What is dog a kind of?", ev) == "canine"
    ev = [Evidence(id="2", title="Paris", score=1.0, text="Paris lies in France. France borders Spain.")]
    assert most_frequent_entity("Where is Paris?", ev) == "France"
    assert most_frequent_entity("q", []) == ""
    _ = Passage  # the schema type the generator reads


def test_typed_phrasings_name_the_answers_class(store):
    """When the object's own class is known, some questions say it ("What kind of carnivore is
    wolf?"): the wh-phrase carries the answer's type, as people narrow a question."""
    from kira.reader.questions import TYPED_TEMPLATES, type_word

    toy_kb(store)
    store.add_entities([Entity(id="e:carnivore", kb="toy", name="carnivore"),
                        Entity(id="e:vertebrate", kb="toy", name="aquatic vertebrate"),
                        Entity(id="e:thing", kb="toy", name="whole")])
    store.add_triples([Triple("toy", "e:canine", "@", "e:carnivore"), Triple("toy", "e:fish", "@", "e:vertebrate"),
                       Triple("toy", "e:tree", "@", "e:thing")])
    qs = [q for seed in range(6) for q in questions_from_kb(store, "toy", seed=seed) if q["relation"] == "hypernym"]
    typed = {t.format(subject=q["subject_name"], type=w) for q in qs for w in ("carnivore", "vertebrate")
             for t in TYPED_TEMPLATES["hypernym"]}
    asked = {q["question"] for q in qs}
    assert asked & typed  # some typed …
    assert asked - typed  # … and some plain
    for q in qs:  # a typed question names the class of its answer, never another one
        if q["question"] in typed:
            assert ("carnivore" in q["question"]) == (q["answers"] == ["canine"])
    assert not any("whole" in q["question"] for q in qs)  # too abstract to narrow a question
    assert type_word("sense organ") == "organ" and type_word("Asian country") == "country"
    assert type_word("whole") is None and type_word("") is None
