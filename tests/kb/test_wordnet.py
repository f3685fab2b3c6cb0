"""The WordNet data-file parser: line format, gloss splitting, pointer names, errors with lines."""

from __future__ import annotations

from pathlib import Path

import pytest

from kira.errors import IngestError
from kira.kb.wordnet import RELATION_NAMES, iter_synsets, parse_line, split_gloss

WN = Path("/usr/share/wordnet")

LINE = ("02084071 05 n 03 dog 0 domestic_dog 0 Canis_familiaris 0 003 @ 02083346 n 0000 "
        "#m 02083863 n 0000 + 01234567 v 0201 | a member of the genus Canis; occurs in many breeds; "
        '"the dog barked all night"  ')


def test_parse_line_fields():
    s = parse_line(LINE)
    assert s.id == "n.02084071" and s.pos == "n" and s.lex_filenum == 5
    assert s.lemmas == ["dog", "domestic dog", "Canis familiaris"]
    assert s.gloss == "a member of the genus Canis; occurs in many breeds"
    assert s.examples == ["the dog barked all night"]
    assert s.pointers == [("@", "n.02083346", 0, 0), ("#m", "n.02083863", 0, 0), ("+", "v.01234567", 2, 1)]
    assert RELATION_NAMES["@"] == "hypernym" and RELATION_NAMES["%p"] == "part meronym"


def test_satellite_and_adjective_marker():
    s = parse_line("00001740 00 s 01 able(p) 0 001 & 00001234 a 0000 | having power")
    assert s.id == "a.00001740" and s.pos == "s" and s.lemmas == ["able"]
    assert s.pointers == [("&", "a.00001234", 0, 0)]


def test_split_gloss_multiple_examples():
    d, ex = split_gloss('draw air into the lungs; "I breathe"; "The patient is respiring"')
    assert d == "draw air into the lungs" and ex == ["I breathe", "The patient is respiring"]


def test_malformed_line_names_field_and_line(tmp_path):
    bad = tmp_path / "data.noun"
    bad.write_text("  license header line\n" + LINE + "\n" + "00000001 03 n 01 thing 0 001 ?? 0001 n 0000 | x\n")
    with pytest.raises(IngestError) as e:
        list(iter_synsets(tmp_path, pos="n"))
    assert e.value.line == 3 and e.value.field == "pointer_symbol" and "data.noun" in e.value.path


@pytest.mark.skipif(not (WN / "data.adv").exists(), reason="WordNet 3.0 not installed")
def test_real_wordnet_adverbs_resolve():
    syns = list(iter_synsets(WN, pos="r"))
    assert len(syns) == 3621
    assert all(s.lemmas and s.gloss for s in syns)
