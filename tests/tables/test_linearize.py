"""TaBERT-style linearization and the question-time content snapshot."""

from __future__ import annotations

import pandas as pd

from kira.tables.linearize import column_kind, linearize_table, snapshot, snapshot_rows


def _table(n: int = 30) -> pd.DataFrame:
    return pd.DataFrame({"country": [f"country{i}" for i in range(n)], "pop": [i * 1000 for i in range(n)],
                         "gdp": [i + 0.5 for i in range(n)]})


def test_column_kinds():
    assert [column_kind(t) for t in ("BIGINT", "DOUBLE", "DECIMAL(9,2)", "DATE", "TIMESTAMP", "VARCHAR")] == \
        ["real", "real", "real", "date", "date", "text"]


def test_chunks_keep_header_and_cover_all_rows():
    df = _table(30)
    ps = linearize_table("stats", df, "World stats", ["VARCHAR", "BIGINT", "DOUBLE"], "stats", max_words=60)
    assert len(ps) > 3
    assert [p.id for p in ps] == [f"stats:{i}" for i in range(len(ps))]
    covered = []
    for p in ps:
        assert p.text.startswith("World stats. columns: country | pop | gdp\n")
        first, last = p.metadata["rows"]
        assert p.metadata["table"] == "stats" and p.source == "stats"
        assert f"row {first}: country | text | country{first}" in p.text
        assert f"row {last}: " in p.text and f"row {last + 1}: " not in p.text
        assert len(p.text.split()) <= 60 or first == last
        covered += list(range(first, last + 1))
    assert covered == list(range(30))
    assert "gdp | real | 1.5" in ps[0].text  # floats formatted as cells are shown


def test_linearize_is_deterministic():
    df = _table(10)
    a = linearize_table("s", df, "c", ["VARCHAR", "BIGINT", "DOUBLE"], "s")
    b = linearize_table("s", df, "c", ["VARCHAR", "BIGINT", "DOUBLE"], "s")
    assert [(p.id, p.text) for p in a] == [(p.id, p.text) for p in b]


def test_snapshot_keeps_overlapping_rows_in_table_order():
    df = _table(30)
    keep = snapshot_rows(df, "What is the pop of country17 and country4?", k=3)
    assert 17 in keep and 4 in keep and keep == sorted(keep) and len(keep) == 3
    snap, idx = snapshot(df, "gdp of country25", k=2)
    assert 25 in idx and len(snap) == 2 and snap.index.tolist() == [0, 1]
    assert snap.iloc[idx.index(25)]["country"] == "country25"
    # short tables are returned whole; no overlap keeps the first rows
    assert snapshot_rows(df.head(3), "anything", k=5) == [0, 1, 2]
    assert snapshot_rows(df, "zzz", k=4) == [0, 1, 2, 3]


def test_snapshot_prefers_longer_ngram_matches():
    df = pd.DataFrame({"city": ["new delhi", "york", "new york", "newark"], "v": [1, 2, 3, 4]})
    assert snapshot_rows(df, "population of new york", k=1) == [2]


def test_snapshot_columns_keep_the_asked_and_the_key_column_in_table_order():
    from kira.tables.linearize import snapshot_columns

    df = pd.DataFrame({"name": ["ford torino", "vw rabbit"], "cylinders": [8, 4], "weight_in_lbs": [3449, 1937],
                       "horsepower": [140, 70], "origin": ["USA", "Europe"]})
    assert snapshot_columns(df, "What is the horsepower of the ford torino?", k=2) == [0, 3]
    assert snapshot_columns(df, "What is the weight in lbs of the vw rabbit?", k=2) == [0, 2]
    assert snapshot_columns(df, "anything", k=10) == [0, 1, 2, 3, 4]
    assert snapshot_columns(df, "no overlap at all", k=2) == [0, 1]  # ties keep table order
