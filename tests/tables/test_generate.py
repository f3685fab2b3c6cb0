"""The SQL-template generator: answers agree with the table, supervision is consistent, splits by table."""

from __future__ import annotations

import json
import re
from collections import defaultdict

import pandas as pd

from kira.tables.generate import PHRASINGS, generate_for_table, generate_from_store, split_tables, view_frame
from kira.tables.ingest import add_table
from kira.tables.values import cell_text, denotation_correct, execute_aggregation

PEOPLE = pd.DataFrame({
    "name": ["ann", "bob", "cid", "dee", "eve", "fay", "gus", "hal"],
    "team": ["red", "blue", "red", "red", "blue", "green", "blue", "red"],
    "age": [31, 25, 47, 38, 29, 52, 41, 33],
    "salary": [1200.5, 980.0, 2100.25, 1500.0, 1100.75, 2500.0, 1700.0, 1300.0],
})
TYPES = ["VARCHAR", "VARCHAR", "BIGINT", "DOUBLE"]


def test_answers_match_the_table():
    qs = generate_for_table("people", PEOPLE, TYPES, n_views=12, min_rows=4, max_rows=8, per_view=20, seed=3)
    assert len(qs) > 60
    templates = {q.template for q in qs}
    assert templates >= {"lookup", "count", "count_cmp", "sum", "sum_all", "avg", "avg_all", "argmax",
                         "max_value", "compare"}
    for q in qs:
        view = view_frame(PEOPLE, q.view["rows"], q.view["columns"])
        cells = [cell_text(view.iat[r, c]) for r, c in q.coordinates]
        # executing the recorded aggregation on the recorded cells reproduces DuckDB's answer
        got = execute_aggregation(q.aggregation, cells)
        pred = cells if q.aggregation == "NONE" else [got]
        assert denotation_correct(pred, q.answers), (q.question, q.sql, cells, q.answers)
        assert q.aggregation in ("NONE", "SUM", "AVERAGE", "COUNT")
        if q.aggregation != "NONE":
            assert abs(q.float_answer - float(q.answers[0])) < 1e-6
        assert any(re.fullmatch(_pattern(p), q.question) for p in PHRASINGS[q.template]), q.question


def _pattern(phrasing: str) -> str:
    """A phrasing template as a regex: each {slot} matches any text."""
    return re.sub(r"\\{\w+\\}", ".+", re.escape(phrasing))


def test_independent_pandas_check_of_aggregates():
    """Recompute filtered COUNT/SUM/AVERAGE with pandas from the recorded filter (column, value)."""
    qs = generate_for_table("people", PEOPLE, TYPES, n_views=12, per_view=20, seed=5)
    checked = 0
    for q in qs:
        if q.template not in ("count", "sum", "avg"):
            continue
        view = view_frame(PEOPLE, q.view["rows"], q.view["columns"])
        col = re.search(r'WHERE "([^"]+)" = \?', q.sql).group(1)
        sel = view[view[col].map(cell_text) == q.params[0]]
        assert len(sel) >= 1
        if q.template == "count":
            assert int(q.answers[0]) == len(sel)
        else:
            num = re.search(r'(sum|avg)\("([^"]+)"\)', q.sql).group(2)
            expect = sel[num].sum() if q.template == "sum" else sel[num].mean()
            assert abs(float(q.answers[0]) - expect) < 1e-6
        checked += 1
    assert checked >= 10


def test_several_phrasings_and_json_round_trip():
    qs = generate_for_table("people", PEOPLE, TYPES, n_views=15, per_view=20, seed=1)
    by_tpl = defaultdict(set)
    for q in qs:
        by_tpl[q.template].add(q.question.split()[0:2].__str__())
    assert sum(len(v) >= 2 for v in by_tpl.values()) >= 6
    d = json.loads(qs[0].to_json())
    assert set(d) >= {"table", "question", "answers", "aggregation", "coordinates", "view", "float_answer"}


def test_split_is_by_table(store):
    for i in range(5):
        add_table(store, PEOPLE.assign(age=PEOPLE["age"] + i), name=f"people{i}")
    train, test = split_tables([f"people{i}" for i in range(5)], 0.4, seed=0)
    assert len(test) == 2 and not set(train) & set(test)
    qs = generate_from_store(store, heldout_fraction=0.4, seed=0, n_views=3)
    assert {q.table for q in qs if q.split == "test"} == set(test)
    assert {q.table for q in qs if q.split == "train"} == set(train)
    assert split_tables(["a", "b", "c"], heldout=["b"]) == (["a", "c"], ["b"])
