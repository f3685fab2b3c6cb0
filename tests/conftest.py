"""Shared fixtures. Tests never touch the network and use tiny models unless they say otherwise."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from kira.config import load_config  # noqa: E402
from kira.kb.store import DuckDBStore  # noqa: E402
from kira.schema import Passage  # noqa: E402

TINY_CORPUS = [
    ("Paris", "Paris is the capital and most populous city of France, on the river Seine."),
    ("Berlin", "Berlin is the capital of Germany and its largest city by population."),
    ("Danube", "The Danube is the second-longest river in Europe, flowing through Vienna and Budapest."),
    ("Photosynthesis", "Photosynthesis is the process by which green plants use sunlight to make sugar."),
    ("Mount Everest", "Mount Everest is Earth's highest mountain above sea level, in the Himalayas."),
    ("Penguin", "Penguins are flightless seabirds living almost exclusively in the Southern Hemisphere."),
    ("Jupiter", "Jupiter is the fifth planet from the Sun and the largest in the Solar System."),
    ("Mozart", "Wolfgang Amadeus Mozart was a prolific composer of the Classical period, born in Salzburg."),
]


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """An empty workspace directory; KIRA_WORKSPACE points at it."""
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.setenv("KIRA_WORKSPACE", str(ws))
    return ws


@pytest.fixture
def config(workspace):
    return load_config(workspace)


@pytest.fixture
def store(tmp_path):
    s = DuckDBStore(tmp_path / "store.duckdb")
    yield s
    s.close()


@pytest.fixture
def tiny_passages() -> list[Passage]:
    return [Passage(id=f"tiny-{i}", title=t, text=x, source="tiny") for i, (t, x) in enumerate(TINY_CORPUS)]
