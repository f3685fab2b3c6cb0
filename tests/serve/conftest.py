"""A tiny real workspace for the serving tests: the shared tiny corpus, indexed once per session
with the real index build (Lucene + FAISS, ``tiny-bert`` encoder); tests copy it before mutating."""

from __future__ import annotations

import shutil

import pytest

from kira.config import load_config
from kira.kb.store import DuckDBStore
from kira.schema import Passage


def _shared_corpus():
    """The tiny corpus of tests/conftest.py (loaded by path: pytest runs in importlib mode)."""
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("kira_tests_shared_conftest",
                                                  Path(__file__).resolve().parents[1] / "conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.TINY_CORPUS


TINY_CORPUS = _shared_corpus()

TOML = """\
[index]
encoder = "tiny-bert"
batch_size = 16

[reader]
extractive = "tiny-bert"
fid = "tiny-t5"
k = 4

[serve]
watch_interval_s = 0.2
"""


def build_tiny_workspace(ws, corpus=TINY_CORPUS):
    """Store the corpus and build + publish one index version (the real build)."""
    from kira.index_build.build import build_index

    ws.mkdir(parents=True, exist_ok=True)
    (ws / "kira.toml").write_text(TOML)
    cfg = load_config(ws)
    store = DuckDBStore(cfg.store_path)
    try:
        store.add_passages(Passage(id=f"tiny:{i}", title=t, text=x, source="tiny") for i, (t, x) in enumerate(corpus))
        store.register_source("tiny", "jsonl", n_records=len(corpus))
        build_index(cfg, store, progress=False)
    finally:
        store.close()
    return ws


@pytest.fixture(scope="session")
def tiny_index_ws(tmp_path_factory):
    return build_tiny_workspace(tmp_path_factory.mktemp("serve") / "ws")


@pytest.fixture
def served_ws(tiny_index_ws, tmp_path):
    """A private copy of the tiny indexed workspace (safe to reindex, add KBs, publish)."""
    dst = tmp_path / "ws"
    shutil.copytree(tiny_index_ws, dst, symlinks=True)
    return dst
