import threading

import pytest

from kira.errors import KiraError
from kira.kb.store import DuckDBStore, table_sql_name
from kira.kb.testing import StoreContract
from kira.schema import Passage


class TestDuckDBStore(StoreContract):
    @pytest.fixture
    def store(self, tmp_path):
        s = DuckDBStore(tmp_path / "store.duckdb")
        yield s
        s.close()


def test_store_persists_across_reopen(tmp_path):
    path = tmp_path / "s.duckdb"
    with DuckDBStore(path) as s:
        s.add_passages([Passage("a", "A", "alpha", "src")])
    with DuckDBStore(path, read_only=True) as s:
        assert s.get_passages(["a"])[0].text == "alpha"


def test_store_usable_from_threads(tmp_path):
    s = DuckDBStore(tmp_path / "s.duckdb")
    s.add_passages([Passage(str(i), "", f"t{i}", "src") for i in range(10)])
    counts = []
    threads = [threading.Thread(target=lambda: counts.append(s.count_passages())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert counts == [10, 10, 10, 10]


def test_table_names_are_checked():
    assert table_sql_name("cars_2024") == "t_cars_2024"
    with pytest.raises(KiraError):
        table_sql_name('x"; drop table passages; --')


def test_entity_lookup_treats_like_wildcards_as_text(tmp_path):
    from kira.schema import Entity

    with DuckDBStore(tmp_path / "s.duckdb") as s:
        s.add_entities([Entity("a", "kb", "Vienna"), Entity("b", "kb", "50% off"), Entity("c", "kb", "x_y")])
        assert [e.id for e in s.find_entities("%")] == []
        assert [e.id for e in s.find_entities("_")] == []
        assert [e.id for e in s.find_entities("50%")] == ["b"]
        assert [e.id for e in s.find_entities("x_")] == ["c"]
        assert [e.id for e in s.find_entities("vie")] == ["a"]


def test_one_namespace_for_sources(tmp_path):
    from kira.kb.store import SourceNameError, claim_source_name, require_source_kind

    with DuckDBStore(tmp_path / "s.duckdb") as s:
        s.register_source("docs", "text:jsonl", path=str(tmp_path / "a.jsonl"))
        s.register_source("geo", "kb:tsv", path=str(tmp_path / "geo.tsv"))
        with pytest.raises(SourceNameError, match="taken by a text source"):
            claim_source_name(s, "docs", "kb", str(tmp_path / "geo.tsv"))
        with pytest.raises(SourceNameError, match="taken by a knowledge base"):
            claim_source_name(s, "geo", "table", "x.csv")
        with pytest.raises(SourceNameError, match="--replace"):
            claim_source_name(s, "docs", "text", str(tmp_path / "b.jsonl"))
        # same files (spelled differently) or an explicit replace: allowed
        assert claim_source_name(s, "docs", "text", str(tmp_path / "." / "a.jsonl"))["name"] == "docs"
        assert claim_source_name(s, "docs", "text", str(tmp_path / "b.jsonl"), replace=True)["name"] == "docs"
        assert claim_source_name(s, "new", "table", "x.csv") is None
        with pytest.raises(SourceNameError, match="kira index remove --source docs"):
            require_source_kind(s, "docs", "kb")
        with pytest.raises(KiraError, match="no knowledge base named"):
            require_source_kind(s, "nope", "kb")


def test_snapshot_copies_every_table_and_close_runs_callbacks_once(tmp_path):
    import pandas as pd

    s = DuckDBStore(tmp_path / "s.duckdb")
    s.add_passages([Passage("a", "A", "alpha", "src")])
    s.add_table("cities", pd.DataFrame({"name": ["Paris"], "pop": [2.1]}), source="cities")
    with s.transaction():  # the snapshot sees this connection's uncommitted writes
        s.add_passages([Passage("b", "B", "beta", "src")])
        rows = s.write_snapshot(tmp_path / "snap.duckdb")
    assert rows["passages"] == 2 and rows["t_cities"] == 1
    with DuckDBStore(tmp_path / "snap.duckdb", read_only=True) as snap:
        assert [p.id for p in snap.get_passages(["a", "b"])] == ["a", "b"]
        assert snap.get_table("cities")["name"].tolist() == ["Paris"]
    calls = []
    s.on_close.append(lambda: calls.append(1))
    s.close()
    s.close()
    assert calls == [1]
