"""Every reader runs ``ReaderContract`` (tiny models; real DuckDB for the table readers)."""

from __future__ import annotations

import pandas as pd
import pytest

from kira.kb.store import DuckDBStore
from kira.reader.testing import ReaderContract
from kira.schema import Evidence


def _ev(i: str, title: str, text: str, score: float, **kw) -> Evidence:
    return Evidence(id=i, title=title, text=text, score=score, source="toy", retriever="bm25", **kw)


TEXT_CASES = [
    ("Which river flows through Vienna?",
     [_ev("p1", "Danube", "The Danube flows through Vienna and Budapest to the Black Sea.", 3.0),
      _ev("p2", "Rhine", "The Rhine flows through Basel and Cologne.", 2.0)]),
    ("When was Mozart born?",
     [_ev("p3", "Mozart", "Wolfgang Amadeus Mozart (1756-1791) was a composer born in Salzburg.", 5.0)]),
    ("What is the capital of France?",
     [_ev("p4", "Paris", "Paris is the capital of France.", 1.0), _ev("p5", "Lyon", "Lyon is a city.", 0.5),
      _ev("p6", "Nice", "Nice is on the Riviera.", 0.2)]),
]


class TestExtractiveReader(ReaderContract):
    @pytest.fixture(scope="class")
    def reader(self):
        from kira.reader.extractive import ExtractiveReader

        return ExtractiveReader.load("tiny-bert", device="cpu", max_length=48, stride=16, max_query_tokens=16)

    @pytest.fixture
    def cases(self):
        return TEXT_CASES


class TestFiDReader(ReaderContract):
    @pytest.fixture(scope="class")
    def reader(self):
        from kira.reader.fid import FiDReader

        return FiDReader.load("tiny-t5", device="cpu", max_length=24, max_answer_tokens=4)

    @pytest.fixture
    def cases(self):
        return TEXT_CASES


SALES = pd.DataFrame({"region": ["north", "south", "east", "west"], "revenue": [10, 20, 30, 40],
                      "units": [1, 2, 3, 4]})


@pytest.fixture(scope="module")
def table_store(tmp_path_factory):
    from kira.tables.ingest import add_table

    s = DuckDBStore(tmp_path_factory.mktemp("tables") / "store.duckdb")
    add_table(s, SALES, name="sales", caption="regional sales revenue and units")
    yield s
    s.close()


TABLE_CASES = [
    ("What is the revenue of the south region?",
     [_ev("sales:0", "regional sales", "region | revenue | units", 2.0, kind="table",
          metadata={"table": "sales", "rows": [0, 3]})]),
    ("How many units were sold in total?",
     [_ev("sales:0", "regional sales", "region | revenue | units", 2.0, kind="table",
          metadata={"table": "sales", "rows": [0, 3]})]),
]


class TestTapasTableReader(ReaderContract):
    @pytest.fixture(scope="class")
    def reader(self, table_store):
        from kira.tables.reader import TableReader
        from kira.tables.tapas import TableQAModel

        return TableReader(TableQAModel.load("tiny-tapas", max_length=96, snapshot_rows=4, device="cpu"), table_store)

    @pytest.fixture
    def cases(self):
        return TABLE_CASES


class TestParserTableReader(ReaderContract):
    cites_given_evidence = False  # it reads the whole table from the store and cites its SQL

    @pytest.fixture(scope="class")
    def reader(self, table_store, tmp_path_factory):
        from kira.tables.answer import ParserTableReader
        from kira.tables.parser import TableParser

        out = tmp_path_factory.mktemp("parser") / "table-parser"
        TableParser.create("tiny-bert", device="cpu").save(out)
        return ParserTableReader(str(out), table_store)

    @pytest.fixture
    def cases(self):
        return TABLE_CASES
