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
