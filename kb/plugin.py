"""Plug a knowledge base in (or out) with one call.

``add_kb`` reads a source through the registry, validates the whole KB before writing anything
(dangling entity references, unknown relation ids, encoding and format errors — each named by
file and line), then in one store transaction replaces the KB's entities/relations/triples,
writes its verbalized passages and records a new version of the source. ``remove_kb`` undoes all
of it, including trained embedding artifacts under ``models/<kb>-*``.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kira.errors import IngestError, KiraError
from kira.kb.registry import make_source
from kira.kb.sources import origin
from kira.kb.store import claim_source_name, require_source_kind
from kira.kb.verbalize import load_templates, verbalize_kb
from kira.schema import Entity, Passage, Relation, Triple


@dataclass
class KBReport:
    name: str
    source_type: str
    version: int
    n_entities: int
    n_relations: int
    n_triples: int
    n_passages: int
    splits: dict[str, int] = field(default_factory=dict)
    checksum: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def checksum_paths(paths: list[str]) -> str:
    """sha256 over the bytes of all files named (directories: their files, sorted)."""
    h = hashlib.sha256()
    for p in paths:
        path = Path(str(p).split("=", 1)[-1])
        files = sorted(f for f in path.rglob("*") if f.is_file()) if path.is_dir() else [path]
        for f in files:
            if f.is_file() and "__pycache__" not in f.parts:
                h.update(f.name.encode())
                with open(f, "rb") as fh:
                    for block in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        h.update(block)
    return h.hexdigest()


@dataclass
class CollectedKB:
    entities: dict[str, Entity]
    relations: dict[str, Relation]
    triples: list[Triple]


def collect(src, name: str) -> CollectedKB:
    """Read every record and validate the KB as a whole (nothing is stored here)."""
    entities: dict[str, Entity] = {}
    relations: dict[str, Relation] = {}
    triples: list[Triple] = []
    for rec in src.iter_records():
        if isinstance(rec, Entity):
            rec.kb = name
            old = entities.get(rec.id)
            if old is None:
                entities[rec.id] = rec
            else:  # the same entity from two files: merge, first name wins
                old.aliases = list(dict.fromkeys(old.aliases + rec.aliases))
                old.description = old.description or rec.description
        elif isinstance(rec, Relation):
            rec.kb = name
            relations.setdefault(rec.id, rec)
        elif isinstance(rec, Triple):
            rec.kb = name
            triples.append(rec)
        else:
            raise KiraError(f"source {src!r} yielded a {type(rec).__name__}; KB sources yield Entity/Relation/Triple")
    strict_e = getattr(src, "declares_entities", bool(entities))
    strict_r = getattr(src, "declares_relations", bool(relations))
    for t in triples:
        path, line = origin(t)
        if strict_r and t.relation not in relations:
            raise IngestError(path, line, "relation", f"unknown relation id {t.relation!r}")
        for fld in ("head", "tail"):
            eid = getattr(t, fld)
            if strict_e and eid not in entities:
                raise IngestError(path, line, fld, f"dangling reference to unknown entity {eid!r}")
    for t in triples:  # implicit records for ids only seen in triples
        if t.relation not in relations:
            relations[t.relation] = Relation(id=t.relation, kb=name, name=t.relation.replace("_", " "))
        for eid in (t.head, t.tail):
            if eid not in entities:
                entities[eid] = Entity(id=eid, kb=name, name=eid.replace("_", " "))
    return CollectedKB(entities, relations, triples)


def write_kb(store, name: str, kb: CollectedKB, passages: list[Passage]) -> None:
    """Replace the KB's rows with ``kb`` and ``passages`` (one store transaction)."""
    store.replace_kb(name, kb.entities.values(), kb.relations.values(), kb.triples, passages)


def default_templates(source_type: str) -> dict[str, str]:
    if source_type == "wordnet":
        from kira.kb.wordnet import TEMPLATES

        return dict(TEMPLATES)
    return {}


def add_kb(store, name: str, source_type: str, paths: list[str], *, verbalize: bool = True,
           templates: str | Path | dict[str, str] | None = None, max_facts: int = 16,
           options: dict[str, Any] | None = None, replace: bool = False) -> KBReport:
    """Validate, ingest and verbalize a KB in one transaction. Re-adding a KB from the same files
    makes a new version; other input under a KB's name needs ``replace``, and a name held by a
    text source or table is refused (one namespace, see ``claim_source_name``)."""
    if not name or any(c in name for c in "/\\:") or name.startswith("."):
        raise KiraError(f"KB name {name!r} must be non-empty without '/', '\\' or ':'")
    claim_source_name(store, name, "kb", ";".join(map(str, paths)), replace=replace)
    tpl = {**default_templates(source_type), **load_templates(templates)}
    src = make_source(source_type, name, list(paths), **(options or {}))
    kb = collect(src, name)
    if not kb.triples and not kb.entities:
        raise IngestError(",".join(map(str, paths)), None, None, "the source holds no entities or triples")
    passages = list(verbalize_kb(name, kb.entities, kb.relations, kb.triples, tpl, max_facts)) if verbalize else []
    splits: dict[str, int] = {}
    for t in kb.triples:
        splits[t.split] = splits.get(t.split, 0) + 1
    files = getattr(src, "checksum_paths", None) or [p for p in paths if Path(str(p).split("=", 1)[-1]).exists()]
    checksum = checksum_paths(files)
    with store.transaction():
        claim_source_name(store, name, "kb", ";".join(map(str, paths)), replace=replace)  # raced writer
        write_kb(store, name, kb, passages)
        version = store.register_source(
            name, f"kb:{source_type}", path=";".join(map(str, paths)), checksum=checksum,
            n_records=len(kb.entities) + len(kb.relations) + len(kb.triples),
            metadata={"kind": "kb", "source_type": source_type, "n_entities": len(kb.entities),
                      "n_relations": len(kb.relations), "n_triples": len(kb.triples),
                      "n_passages": len(passages), "splits": splits, "options": options or {},
                      "templates": tpl},
        )
    return KBReport(name, source_type, version, len(kb.entities), len(kb.relations), len(kb.triples),
                    len(passages), splits, checksum)


def list_kbs(store) -> list[dict[str, Any]]:
    """KB sources with their counts and versions."""
    return [s for s in store.list_sources() if s["metadata"].get("kind") == "kb" or str(s["kind"]).startswith("kb:")]


def remove_kb(store, name: str, models_dir: str | Path | None = None) -> list[str]:
    """Remove the KB's facts and passages and the artifacts trained for it (``kira.artifacts.kb_artifact_dirs``).

    Returns the artifact directories deleted.
    """
    if store.get_source(name) is not None or name not in store.list_kbs():
        require_source_kind(store, name, "kb")  # never removes a text source or a table
    store.remove_source(name)
    removed = []
    if models_dir is not None:
        from kira.artifacts import kb_artifact_dirs

        for d in kb_artifact_dirs(models_dir, name):
            shutil.rmtree(d)
            removed.append(str(d))
    return removed
