"""Which knowledge-source types exist: Python entry points (group ``kira.sources``) plus runtime
registrations, so a third-party package adds a source by declaring an entry point, not by
editing kira:

    [project.entry-points."kira.sources"]
    mykb = "mypkg.sources:MyKBSource"

A source factory is called as ``factory(name, paths, **options)`` and must return an object with
``name`` and ``iter_records()`` (``kira.schema.KnowledgeSource``).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from kira.errors import KiraError
from kira.schema import KnowledgeSource

GROUP = "kira.sources"
SourceFactory = Callable[..., KnowledgeSource]

_registered: dict[str, SourceFactory] = {}


def register_source(source_type: str, factory: SourceFactory) -> None:
    """Register (or replace) a source type at runtime; wins over an entry point of the same name."""
    _registered[source_type] = factory


def unregister_source(source_type: str) -> None:
    _registered.pop(source_type, None)


def _entry_points() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def available() -> list[str]:
    """All source types: entry points and runtime registrations."""
    return sorted(set(_entry_points()) | set(_registered))


def get_source_factory(source_type: str) -> SourceFactory:
    if source_type in _registered:
        return _registered[source_type]
    eps = _entry_points()
    if source_type not in eps:
        raise KiraError(f"unknown knowledge source type {source_type!r}; available: {', '.join(available())}")
    try:
        return eps[source_type].load()
    except (ImportError, AttributeError) as e:
        raise KiraError(f"source type {source_type!r} ({eps[source_type].value}) failed to load: {e}") from e


def make_source(source_type: str, name: str, paths: list[str], **options: Any) -> KnowledgeSource:
    """Instantiate a source of ``source_type`` for KB ``name`` over ``paths``."""
    src = get_source_factory(source_type)(name, [str(p) for p in paths], **options)
    if not isinstance(src, KnowledgeSource):
        raise KiraError(f"source type {source_type!r} did not produce a KnowledgeSource (needs name, iter_records)")
    return src
