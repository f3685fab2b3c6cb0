"""``ReaderContract``: the behaviour every reader promises, as a pytest mixin.

A test class inherits it and provides a ``reader`` fixture and a ``cases`` fixture: a list of
``(question, evidence)`` the reader can read. Every implementation — the extractive reader, FiD,
the table parser, TAPAS — then runs the same checks, so the pipeline can call any of them through
``kira.schema.Reader`` alone.
"""

from __future__ import annotations

import pytest

from kira.schema import Answer, Reader


class ReaderContract:
    """Inherit and define ``reader`` and ``cases`` fixtures. Set ``cites_given_evidence = False``
    for readers that route a question to a whole store table themselves and cite it as new
    ``kind="table"`` evidence (they may answer with no evidence given)."""

    cites_given_evidence: bool = True

    def test_satisfies_protocol(self, reader):
        assert isinstance(reader, Reader)
        assert isinstance(reader.name, str) and reader.name

    def test_batch_equals_one_at_a_time(self, reader, cases):
        questions = [q for q, _ in cases]
        evidences = [evs for _, evs in cases]
        batch = reader.read_batch(questions, evidences, top_n=2)
        assert len(batch) == len(cases)
        for (q, evs), got in zip(cases, batch, strict=True):
            one = reader.read(q, evs, top_n=2)
            assert [(a.text, a.no_answer) for a in got] == [(a.text, a.no_answer) for a in one]
            assert [a.score for a in got] == pytest.approx([a.score for a in one], rel=1e-3, abs=1e-4)

    def test_deterministic(self, reader, cases):
        q, evs = cases[0]
        first = [(a.text, round(a.score, 5)) for a in reader.read(q, evs, top_n=3)]
        assert first == [(a.text, round(a.score, 5)) for a in reader.read(q, evs, top_n=3)]

    @pytest.mark.parametrize("top_n", [1, 3])
    def test_at_most_top_n_answers_best_first(self, reader, cases, top_n):
        for q, evs in cases:
            answers = reader.read(q, evs, top_n=top_n, allow_no_answer=False)
            assert len(answers) <= top_n and all(isinstance(a, Answer) for a in answers)
            scores = [a.score for a in answers]
            assert scores == sorted(scores, reverse=True)

    def test_never_abstains_when_told_not_to(self, reader, cases):
        for q, evs in cases:
            assert not any(a.no_answer for a in reader.read(q, evs, top_n=3, allow_no_answer=False))

    def test_answers_cite_their_evidence(self, reader, cases):
        for q, evs in cases:
            given = {e.id for e in evs}
            for a in reader.read(q, evs, top_n=3, allow_no_answer=False):
                assert a.evidence, f"{a.text!r} cites no evidence"
                assert a.reader and a.reader.split(":")[0] == reader.name
                for e in a.evidence:
                    if self.cites_given_evidence:
                        assert e.id in given, f"{a.text!r} cites {e.id}, which it was not given"
                    else:
                        assert e.kind == "table" and e.metadata.get("table")
                if a.span is not None and self.cites_given_evidence:
                    s, t = a.span
                    assert 0 <= s < t <= len(a.evidence[0].text)
                    assert a.evidence[0].text[s:t].strip()

    def test_no_evidence_gives_no_answer(self, reader, cases):
        q, _ = cases[0]
        if self.cites_given_evidence:
            assert all(a.no_answer for a in reader.read(q, [], top_n=1))
        assert reader.read_batch([], [], top_n=1) == []
