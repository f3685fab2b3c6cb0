"""Retriever fixtures: one real index (Lucene + FAISS, MiniLM) over the tiny corpus, built once.

The index is built by index build's own ``build_index`` from a DuckDB store, exactly as users get
it; building once per session keeps the retriever tests fast (one JVM, one MiniLM load).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from kira.config import load_config
from kira.kb.store import DuckDBStore
from kira.schema import Passage


def tiny_corpus() -> list[tuple[str, str]]:
    """TINY_CORPUS from tests/conftest.py (the single source of the tiny corpus)."""
    path = Path(__file__).resolve().parents[1] / "conftest.py"
    spec = importlib.util.spec_from_file_location("_kira_tests_conftest", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.TINY_CORPUS)


def tiny_passages_list() -> list[Passage]:
    return [Passage(id=f"tiny-{i}", title=t, text=x, source="tiny", metadata={"position": i})
            for i, (t, x) in enumerate(tiny_corpus())]


def build_workspace(ws: Path, passages: list[Passage], encoder: str = "minilm-l6", dense: bool = True):
    """Store + built, published index version in workspace ``ws``."""
    from kira.index_build.build import build_index

    ws.mkdir(parents=True, exist_ok=True)
    cfg = load_config(ws)
    store = DuckDBStore(cfg.store_path)
    try:
        with store.transaction():
            store.register_source("tiny", "test", n_records=len(passages))
            store.add_passages(passages)
        version = build_index(cfg, store, encoder_spec=encoder, progress=False, dense=dense)
    finally:
        store.close()
    return cfg, version


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny inputs run fastest on one intra-op thread; on shared/oversubscribed CI cores, OpenMP
    spin-waiting across 2+ threads made single-query encodes ~10x slower. Scoped to these tests."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KIRA_THREADS", "1")
    yield
    mp.undo()


@pytest.fixture(scope="session")
def tiny_index(tmp_path_factory):
    """(config, IndexVersion) of a MiniLM + BM25 index over the tiny corpus."""
    return build_workspace(tmp_path_factory.mktemp("retriever") / "ws", tiny_passages_list())


@pytest.fixture
def build_tiny_index():
    """``build(ws, encoder=...) -> (config, IndexVersion)`` over the tiny corpus, for own builds."""
    return lambda ws, encoder="minilm-l6", dense=True: build_workspace(ws, tiny_passages_list(), encoder, dense)


@pytest.fixture(scope="session")
def tiny_retrievers(tiny_index):
    from kira.retriever import open_retrievers

    cfg, version = tiny_index
    return open_retrievers(version, cfg)
