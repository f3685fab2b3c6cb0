"""The demo's ten questions (four showcase, six natural) are not among the readers' training questions."""

from __future__ import annotations

import json

import pytest

from kira.demo import NATURAL_QUESTIONS, QUESTIONS
from kira.reader.generate import decontaminate, training_overlap

TEN = QUESTIONS + NATURAL_QUESTIONS


def test_the_demo_asks_ten_distinct_questions():
    assert len(TEN) == 10 and len(set(TEN)) == 10


def test_decontaminate_drops_equal_questions_up_to_case_punctuation_and_articles():
    recs = [{"question": "what is dog a kind of"}, {"question": "What is a dog a type of?"},
            {"question": "What is the opposite of HOT ?"}]
    kept, dropped = decontaminate(recs, TEN)
    assert dropped == 2 and kept == [{"question": "What is a dog a type of?"}]


def test_training_overlap_names_the_file(tmp_path):
    f = tmp_path / "train.jsonl"
    f.write_text(json.dumps({"question": "who invented the telephone"}) + "\n"
                 + json.dumps({"question": "Who invented the radio?"}) + "\n")
    assert training_overlap(TEN, [f]) == {"Who invented the telephone?": [str(f)]}
    assert training_overlap(QUESTIONS, [f]) == {}


@pytest.mark.skipif(not __import__("os").path.isdir("/usr/share/wordnet"), reason="WordNet not installed")
def test_the_default_pretraining_set_does_not_ask_them(tmp_path):
    """The per-user pretraining set is deterministic: regenerate it exactly and look."""
    from kira.reader.pretrain import PretrainRecipe, pretrain_records

    recs = pretrain_records(PretrainRecipe())
    assert len(recs) > 1000
    f = tmp_path / "pretrain.jsonl"
    f.write_text("".join(json.dumps({"question": r["question"]}) + "\n" for r in recs))
    assert training_overlap(TEN, [f]) == {}
