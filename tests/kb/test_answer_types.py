"""Answer-type agreement from a KB's classes (kira.kb.answer_types), over a real DuckDB store."""

from __future__ import annotations

import pytest

from kira.kb import answer_types
from kira.kb.answer_types import AnswerTypes
from kira.kb.store import DuckDBStore
from kira.schema import Entity, Relation, Triple


@pytest.fixture()
def types(tmp_path):
    with DuckDBStore(tmp_path / "s.duckdb") as s:
        ents = [("city", "city", []), ("mausoleum", "mausoleum", []), ("agra", "Agra", []),
                ("taj", "Taj Mahal", []), ("building", "building", []), ("municipality", "municipality", []),
                ("person", "person", ["individual"]), ("inventor", "inventor", []), ("bell", "Bell", ["Alexander Graham Bell"]),
                ("body part", "body part", []), ("organ", "organ", []), ("eye", "eye", ["oculus"]),
                ("congo_r", "Congo", []), ("congo_c", "Congo", ["Zaire"]), ("river", "river", []), ("country", "country", [])]
        s.add_entities([Entity(i, "kb", n, a) for i, n, a in ents])
        s.add_relations([Relation("@", "kb", "hypernym"), Relation("@i", "kb", "instance hypernym"),
                         Relation("#p", "kb", "part holonym")])
        s.add_triples([Triple("kb", h, r, t) for h, r, t in [
            ("city", "@", "municipality"), ("agra", "@i", "city"), ("mausoleum", "@", "building"),
            ("taj", "@i", "mausoleum"), ("taj", "#p", "agra"), ("inventor", "@", "person"), ("bell", "@i", "inventor"),
            ("organ", "@", "body part"), ("eye", "@", "organ"), ("congo_r", "@i", "river"),
            ("congo_c", "@i", "country")]])
        yield AnswerTypes.from_store(s)


def test_agreeing_answers_are_weighed_up_and_others_down(types, monkeypatch):
    monkeypatch.setattr(answer_types, "TYPE_AGREE", 2.0)
    monkeypatch.setattr(answer_types, "TYPE_MISMATCH", 0.5)
    q = "In which city is the Taj Mahal?"
    assert types.factor(q, "Agra") == 2.0
    assert types.factor(q, "mausoleum") == 0.5
    assert types.factor("Which cities have a mausoleum?", "the Agra") == 2.0  # plural type, article
    assert types.factor("Who invented the telephone?", "Alexander Graham Bell") == 2.0  # who -> person, alias
    assert types.factor("Which body part contains the retina?", "oculus") == 2.0  # two-word class
    # one sense of the answer is enough ("Congo" the river, not the country)
    assert types.factor("Which river is the deepest in Africa?", "Congo") == 2.0
    assert types.factor("Which country is Agra in?", "Congo") == 2.0


def test_the_class_after_is_the_and_a_superlative(types, monkeypatch):
    monkeypatch.setattr(answer_types, "TYPE_AGREE", 2.0)
    monkeypatch.setattr(answer_types, "TYPE_MISMATCH", 0.5)
    assert types.factor("What is the longest river in Africa?", "Congo") == 2.0
    assert types.factor("What is the longest river in Africa?", "Agra") == 0.5
    assert types.factor("Which was the most visited city of India?", "Agra") == 2.0
    assert types.factor("What is the city of the Taj Mahal?", "Agra") == 2.0  # no superlative
    assert types.factor("What is the opposite of hot?", "Agra") == 1.0  # a meta word names no class


def test_unknown_answers_questions_and_meta_words_are_left_alone(types):
    assert types.factor("In which city is the Taj Mahal?", "the old fort") == 1.0  # answer unknown to the KB
    assert types.factor("Which galaxy is Agra in?", "mausoleum") == 1.0  # no class "galaxy"
    assert types.factor("What is the word for a tomb?", "mausoleum") == 1.0  # "word": no type
    assert types.factor("What is a mausoleum?", "building") == 1.0  # no wh-noun
    assert types.factor("Which taj is it?", "Agra") == 1.0  # "taj" names no class (nothing is an instance of it)


def test_no_type_relations_no_checker(tmp_path):
    with DuckDBStore(tmp_path / "s.duckdb") as s:
        s.add_entities([Entity("a", "kb", "Agra")])
        s.add_relations([Relation("#p", "kb", "part holonym")])
        s.add_triples([Triple("kb", "a", "#p", "a")])
        assert AnswerTypes.from_store(s) is None
