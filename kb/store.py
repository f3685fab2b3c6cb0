"""The knowledge store: passages, KB entities/relations/triples, tables and index manifests.

One DuckDB file per workspace (``store.duckdb``). ``KnowledgeStore`` is the protocol a server
database could implement later; ``DuckDBStore`` is the embedded default and the one tested.

Every write of a source happens inside :meth:`DuckDBStore.transaction`: a source is ingested whole
or not at all (a malformed file raises ``IngestError`` and the transaction rolls back).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import duckdb

from kira.errors import KiraError
from kira.schema import Entity, Passage, Relation, Triple

SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    name VARCHAR PRIMARY KEY, kind VARCHAR, path VARCHAR, checksum VARCHAR,
    version INTEGER, n_records BIGINT, added_at TIMESTAMP, metadata JSON);
CREATE TABLE IF NOT EXISTS passages (
    id VARCHAR PRIMARY KEY, title VARCHAR, text VARCHAR, source VARCHAR, metadata JSON);
CREATE TABLE IF NOT EXISTS entities (
    id VARCHAR, kb VARCHAR, name VARCHAR, aliases VARCHAR[], description VARCHAR,
    PRIMARY KEY (kb, id));
CREATE TABLE IF NOT EXISTS relations (id VARCHAR, kb VARCHAR, name VARCHAR, PRIMARY KEY (kb, id));
CREATE TABLE IF NOT EXISTS triples (
    kb VARCHAR, head VARCHAR, relation VARCHAR, tail VARCHAR, split VARCHAR);
CREATE TABLE IF NOT EXISTS table_catalog (
    name VARCHAR PRIMARY KEY, caption VARCHAR, columns JSON, original_columns JSON,
    types JSON, n_rows BIGINT, source VARCHAR, metadata JSON);
CREATE TABLE IF NOT EXISTS index_versions (
    version VARCHAR PRIMARY KEY, created_at TIMESTAMP, status VARCHAR, manifest JSON);
"""

TABLE_PREFIX = "t_"  # user tables live as DuckDB tables named t_<name>


def table_sql_name(name: str) -> str:
    """The DuckDB identifier for a user table; names are normalised to [a-z0-9_]."""
    if not re.fullmatch(r"[a-z0-9_]+", name):
        raise KiraError(f"table name {name!r} must be lower-case letters, digits and underscores")
    return TABLE_PREFIX + name


# ---- one namespace for every source ------------------------------------------------------------
SOURCE_CATEGORIES = ("text", "kb", "table")
REMOVE_COMMANDS = {"text": "kira index remove --source {name}", "kb": "kira kb remove {name}",
                   "table": "kira tables remove {name}"}


class SourceNameError(KiraError):
    """A source name is held by another source (of another kind, or without ``replace``)."""


def source_category(kind: str) -> str:
    """``text`` / ``kb`` / ``table`` for a ``sources.kind`` value (``text:jsonl``, ``kb:tsv``, ``table``);
    any other kind is its own category, so it is never taken for one of these."""
    k = str(kind or "")
    if k.startswith("text:"):
        return "text"
    if k.startswith("kb:"):
        return "kb"
    return k


def _input_key(path: str) -> tuple[str, ...]:
    """A source's inputs, resolved, so the same files named differently compare equal."""
    parts = [x.split("=", 1)[-1] for x in str(path or "").split(";") if x]
    return tuple(sorted(str(Path(x).expanduser().resolve()) for x in parts))


def _short_paths(path: str) -> str:
    parts = [x for x in str(path or "").split(";") if x]
    return (parts[0] + (f" (+{len(parts) - 1} more)" if len(parts) > 1 else "")) if parts else "?"


def _describe(store, src: dict[str, Any]) -> str:
    cat = source_category(src["kind"])
    where = _short_paths(src.get("path", ""))
    if cat == "text":
        return f"a text source ({store.count_passages(src['name'])} passages from {where})"
    if cat == "kb":
        return f"a knowledge base ({src['n_records']} records from {where})"
    if cat == "table":
        return f"a table ({src['n_records']} rows from {where})"
    return f"a {cat!r} source"


def claim_source_name(store, name: str, category: str, path: str = "", replace: bool = False) -> dict | None:
    """Check that ``name`` may be (re)written as a ``category`` source; returns the source it replaces.

    WHY: text, KB and table sources share one namespace (passages carry ``source = name``), so
    adding a KB or table under a text source's name used to wipe that source. A name held by
    another kind is always refused; one held by the same kind is replaced only when the input is
    the same files (re-ingesting an updated source) or ``replace`` is given.
    """
    assert category in SOURCE_CATEGORIES, category
    existing = store.get_source(name)
    if existing is None:
        return None
    held = source_category(existing["kind"])
    if held != category:
        raise SourceNameError(
            f"the name {name!r} is taken by {_describe(store, existing)}; choose another name, or remove "
            f"it first with `{REMOVE_COMMANDS.get(held, 'kira index remove --source {name}').format(name=name)}`")
    if not replace and _input_key(existing.get("path", "")) != _input_key(path):
        raise SourceNameError(
            f"{name!r} is already {_describe(store, existing)}; pass --replace (API: \"replace\": true) "
            f"to replace it with {_short_paths(path)}")
    return existing


def require_source_kind(store, name: str, category: str) -> dict[str, Any]:
    """The source ``name`` if it is a ``category`` source; a clear error naming the right command if
    it is another kind, so a remove only ever removes what it names."""
    what = "knowledge base" if category == "kb" else f"{category} source"
    existing = store.get_source(name)
    if existing is None:
        raise KiraError(f"no {what} named {name!r}")
    held = source_category(existing["kind"])
    if held != category:
        raise SourceNameError(f"{name!r} is {_describe(store, existing)}, not a "
                              f"{what}; remove it "
                              f"with `{REMOVE_COMMANDS.get(held, 'kira index remove --source {name}').format(name=name)}`")
    return existing


@runtime_checkable
class KnowledgeStore(Protocol):
    """What kira needs from a store. Implementations must pass ``kira.testing.StoreContract``."""

    def transaction(self): ...
    def register_source(self, name: str, kind: str, path: str = "", checksum: str = "",
                        n_records: int = 0, metadata: dict | None = None) -> int: ...
    def remove_source(self, name: str) -> None: ...
    def get_source(self, name: str) -> dict[str, Any] | None: ...
    def list_sources(self) -> list[dict[str, Any]]: ...
    def add_passages(self, passages: Iterable[Passage]) -> int: ...
    def delete_passages(self, ids: Iterable[str]) -> int: ...
    def get_passages(self, ids: list[str]) -> list[Passage]: ...
    def iter_passages(self, source: str | None = None, batch_size: int = 10_000) -> Iterator[list[Passage]]: ...
    def count_passages(self, source: str | None = None) -> int: ...
    def add_entities(self, entities: Iterable[Entity]) -> int: ...
    def add_relations(self, relations: Iterable[Relation]) -> int: ...
    def add_triples(self, triples: Iterable[Triple]) -> int: ...
    def get_entities(self, kb: str, ids: list[str]) -> list[Entity]: ...
    def iter_entities(self, kb: str | None = None) -> Iterator[Entity]: ...
    def list_relations(self, kb: str | None = None) -> list[Relation]: ...
    def iter_triples(self, kb: str | None = None, split: str | None = None) -> Iterator[Triple]: ...
    def triples_about(self, kb: str, entity_id: str) -> list[Triple]: ...
    def triples_about_many(self, kb: str, entity_ids: Iterable[str]) -> dict[str, list[Triple]]: ...
    def list_kbs(self) -> list[str]: ...
    def kb_counts(self, kb: str) -> dict[str, int]: ...
    def entity_degrees(self, kb: str) -> dict[str, int]: ...
    def replace_kb(self, kb: str, entities: Iterable[Entity], relations: Iterable[Relation],
                   triples: Iterable[Triple], passages: Iterable[Passage] = ()) -> None: ...


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class DuckDBStore:
    """The embedded store. Thread-safe: each thread gets its own cursor on one connection."""

    def __init__(self, path: str | Path = ":memory:", read_only: bool = False):
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._con = duckdb.connect(self.path, read_only=read_only)
        self._local = threading.local()
        self._depth = 0
        self._lock = threading.RLock()
        self._owner = threading.get_ident()
        self.read_only = read_only
        self.on_close: list = []  # callbacks run once after the connection closes (lock release)
        if not read_only:
            self._con.execute(SCHEMA)

    # ---- connection plumbing ----------------------------------------------------------------
    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """A cursor for the calling thread (DuckDB connections are not shared across threads)."""
        if threading.get_ident() == self._owner:
            return self._con
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = self._con.cursor()
        return cur

    def close(self) -> None:
        """Close the connection (idempotent), then run the ``on_close`` callbacks once."""
        self._con.close()
        while self.on_close:
            self.on_close.pop(0)()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def execute(self, sql: str, params: list | tuple | None = None):
        return self.con.execute(sql, params or [])

    def sql_df(self, sql: str, params: list | tuple | None = None):
        """Run SQL and return a pandas DataFrame (for tables and analysis)."""
        return self.con.execute(sql, params or []).df()

    @contextmanager
    def transaction(self):
        """All-or-nothing block. Nested use joins the outer transaction."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            con = self.con
            con.execute("BEGIN TRANSACTION")
            self._depth = 1
            try:
                yield self
            except BaseException:
                con.execute("ROLLBACK")
                raise
            else:
                con.execute("COMMIT")
            finally:
                self._depth = 0

    # ---- sources ----------------------------------------------------------------------------
    def register_source(self, name: str, kind: str, path: str = "", checksum: str = "",
                        n_records: int = 0, metadata: dict | None = None) -> int:
        """Record (or re-record) a source; returns its version number (1, 2, ... per re-ingest)."""
        rows = self.con.execute("SELECT version FROM sources WHERE name = ?", [name]).fetchall()
        version = (rows[0][0] if rows else 0) + 1
        self.con.execute("DELETE FROM sources WHERE name = ?", [name])
        self.con.execute(
            "INSERT INTO sources VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [name, kind, str(path), checksum, version, n_records, _now(), json.dumps(metadata or {})],
        )
        return version

    def get_source(self, name: str) -> dict[str, Any] | None:
        rows = [s for s in self.list_sources() if s["name"] == name]
        return rows[0] if rows else None

    def list_sources(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT * FROM sources ORDER BY name")
        cols = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            d = dict(zip(cols, r, strict=True))
            d["metadata"] = json.loads(d["metadata"]) if d["metadata"] else {}
            out.append(d)
        return out

    def remove_source(self, name: str) -> None:
        """Remove a source and everything it contributed (passages, KB records, tables)."""
        with self.transaction():
            self.con.execute("DELETE FROM passages WHERE source = ?", [name])
            for t in ("entities", "relations", "triples"):
                self.con.execute(f"DELETE FROM {t} WHERE kb = ?", [name])
            for (tname,) in self.con.execute(
                "SELECT name FROM table_catalog WHERE source = ?", [name]
            ).fetchall():
                self.con.execute(f'DROP TABLE IF EXISTS "{table_sql_name(tname)}"')
            self.con.execute("DELETE FROM table_catalog WHERE source = ?", [name])
            self.con.execute("DELETE FROM sources WHERE name = ?", [name])

    # ---- passages ---------------------------------------------------------------------------
    def add_passages(self, passages: Iterable[Passage], batch: int = 50_000) -> int:
        """Insert or replace passages by id (bulk, through Arrow: DuckDB's ``executemany`` path runs
        ~20x slower). The last of several passages with one id wins. Returns how many were written."""
        import pyarrow as pa

        n = 0
        buf: dict[str, Passage] = {}

        def flush() -> None:
            if not buf:
                return
            ps = list(buf.values())
            tbl = pa.table({"id": [p.id for p in ps], "title": [p.title for p in ps], "text": [p.text for p in ps],
                            "source": [p.source for p in ps],
                            "metadata": [json.dumps(p.metadata, ensure_ascii=False) for p in ps]})
            # DuckDB's replacement scan reads the local Arrow table by name (``register`` would
            # refuse to run while an earlier statement's result is still open on the connection)
            _kira_new_passages = tbl  # noqa: F841
            self.con.execute("INSERT OR REPLACE INTO passages "
                             "SELECT id, title, text, source, metadata::JSON FROM _kira_new_passages")
            buf.clear()

        with self.transaction():
            for p in passages:
                buf[p.id] = p
                n += 1
                if len(buf) >= batch:
                    flush()
            flush()
        return n

    def delete_passages(self, ids: Iterable[str]) -> int:
        ids = list(ids)
        if not ids:
            return 0
        with self.transaction():
            before = self.count_passages()
            self.con.execute("DELETE FROM passages WHERE id IN (SELECT unnest(?))", [ids])
            return before - self.count_passages()

    @staticmethod
    def _passage(row: tuple) -> Passage:
        return Passage(id=row[0], title=row[1], text=row[2], source=row[3],
                       metadata=json.loads(row[4]) if row[4] else {})

    def get_passages(self, ids: list[str]) -> list[Passage]:
        """Passages in the order of ``ids`` (missing ids are skipped)."""
        if not ids:
            return []
        rows = self.con.execute(
            "SELECT id, title, text, source, metadata FROM passages WHERE id IN (SELECT unnest(?))", [list(ids)]
        ).fetchall()
        by_id = {r[0]: self._passage(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def iter_passages(self, source: str | None = None, batch_size: int = 10_000) -> Iterator[list[Passage]]:
        """Stream passages in id order, ``batch_size`` at a time (bounded memory)."""
        where, params = ("WHERE source = ?", [source]) if source else ("", [])
        cur = self.con.execute(f"SELECT id, title, text, source, metadata FROM passages {where} ORDER BY id", params)
        while rows := cur.fetchmany(batch_size):
            yield [self._passage(r) for r in rows]

    def count_passages(self, source: str | None = None) -> int:
        where, params = ("WHERE source = ?", [source]) if source else ("", [])
        # fetchall, not fetchone: DuckDB 2 keeps a half-read result open on the connection
        return self.con.execute(f"SELECT count(*) FROM passages {where}", params).fetchall()[0][0]

    # ---- KB records -------------------------------------------------------------------------
    def add_entities(self, entities: Iterable[Entity]) -> int:
        rows = [(e.id, e.kb, e.name, list(e.aliases), e.description) for e in entities]
        with self.transaction():
            if rows:
                self.con.executemany("INSERT OR REPLACE INTO entities VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows)

    def add_relations(self, relations: Iterable[Relation]) -> int:
        rows = [(r.id, r.kb, r.name) for r in relations]
        with self.transaction():
            if rows:
                self.con.executemany("INSERT OR REPLACE INTO relations VALUES (?, ?, ?)", rows)
        return len(rows)

    def add_triples(self, triples: Iterable[Triple]) -> int:
        import pandas as pd

        df = pd.DataFrame([(t.kb, t.head, t.relation, t.tail, t.split) for t in triples],
                          columns=["kb", "head", "relation", "tail", "split"])
        with self.transaction():
            if len(df):
                self.con.register("_new_triples", df)
                self.con.execute("INSERT INTO triples SELECT * FROM _new_triples")
                self.con.unregister("_new_triples")
        return len(df)

    @staticmethod
    def _entity(r: tuple) -> Entity:
        return Entity(id=r[0], kb=r[1], name=r[2], aliases=list(r[3] or []), description=r[4] or "")

    def get_entities(self, kb: str, ids: list[str]) -> list[Entity]:
        rows = self.con.execute(
            "SELECT * FROM entities WHERE kb = ? AND id IN (SELECT unnest(?))", [kb, list(ids)]
        ).fetchall()
        by_id = {r[0]: self._entity(r) for r in rows}
        return [by_id[i] for i in ids if i in by_id]

    def iter_entities(self, kb: str | None = None) -> Iterator[Entity]:
        where, params = ("WHERE kb = ?", [kb]) if kb else ("", [])
        cur = self.con.execute(f"SELECT * FROM entities {where} ORDER BY kb, id", params)
        while rows := cur.fetchmany(10_000):
            yield from (self._entity(r) for r in rows)

    def find_entities(self, text: str, kb: str | None = None, limit: int = 20) -> list[Entity]:
        """Entities whose name or an alias equals ``text`` (case-insensitive), then prefix matches."""
        q = text.strip().lower()
        kb_clause, params = ("AND kb = ?", [kb]) if kb else ("", [])
        rows = self.con.execute(
            f"""SELECT *, CASE WHEN lower(name) = ? OR list_contains(list_transform(aliases, lambda a: lower(a)), ?)
                          THEN 0 ELSE 1 END AS rank_
                FROM entities
                WHERE (lower(name) = ? OR list_contains(list_transform(aliases, lambda a: lower(a)), ?)
                       OR starts_with(lower(name), ?) ) {kb_clause}
                ORDER BY rank_, length(name), id LIMIT ?""",
            [q, q, q, q, q, *params, limit],
        ).fetchall()
        return [self._entity(r[:5]) for r in rows]

    def list_relations(self, kb: str | None = None) -> list[Relation]:
        where, params = ("WHERE kb = ?", [kb]) if kb else ("", [])
        return [Relation(id=r[0], kb=r[1], name=r[2])
                for r in self.con.execute(f"SELECT * FROM relations {where} ORDER BY kb, id", params).fetchall()]

    def iter_triples(self, kb: str | None = None, split: str | None = None) -> Iterator[Triple]:
        clauses, params = [], []
        if kb:
            clauses.append("kb = ?")
            params.append(kb)
        if split:
            clauses.append("split = ?")
            params.append(split)
        where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
        cur = self.con.execute(f"SELECT kb, head, relation, tail, split FROM triples {where}", params)
        while rows := cur.fetchmany(50_000):
            yield from (Triple(*r) for r in rows)

    def triples_about(self, kb: str, entity_id: str) -> list[Triple]:
        return self.triples_about_many(kb, [entity_id])[entity_id]

    def triples_about_many(self, kb: str, entity_ids: Iterable[str]) -> dict[str, list[Triple]]:
        """Each entity's triples (as head or tail), in one scan: a scan per entity costs ~5 ms."""
        ids = list(dict.fromkeys(entity_ids))
        out: dict[str, list[Triple]] = {i: [] for i in ids}
        if not ids:
            return out
        rows = self.con.execute(
            "SELECT kb, head, relation, tail, split FROM triples WHERE kb = ? "
            "AND (head IN (SELECT unnest(?)) OR tail IN (SELECT unnest(?))) ORDER BY rowid",
            [kb, ids, ids]).fetchall()
        for r in rows:
            t = Triple(*r)
            if t.head in out:
                out[t.head].append(t)
            if t.tail in out and t.tail != t.head:
                out[t.tail].append(t)
        return out

    def kb_counts(self, kb: str) -> dict[str, int]:
        """Entities, relations and triples a KB holds."""
        return {t: self.con.execute(f"SELECT count(*) FROM {t} WHERE kb = ?", [kb]).fetchall()[0][0]
                for t in ("entities", "relations", "triples")}

    def entity_degrees(self, kb: str) -> dict[str, int]:
        """How many triples each entity of a KB takes part in (as head or tail)."""
        rows = self.con.execute("SELECT e, count(*) FROM (SELECT head AS e FROM triples WHERE kb = ? "
                                "UNION ALL SELECT tail FROM triples WHERE kb = ?) GROUP BY e", [kb, kb]).fetchall()
        return {e: int(n) for e, n in rows}

    def replace_kb(self, kb: str, entities: Iterable[Entity], relations: Iterable[Relation],
                   triples: Iterable[Triple], passages: Iterable[Passage] = ()) -> None:
        """Replace everything KB ``kb`` holds (entities, relations, triples and its passages) in one
        transaction, in bulk (WordNet's 378k triples row by row would take minutes)."""
        import pandas as pd

        frames = {
            "entities": pd.DataFrame([(e.id, kb, e.name, list(e.aliases), e.description) for e in entities],
                                     columns=["id", "kb", "name", "aliases", "description"]),
            "relations": pd.DataFrame([(r.id, kb, r.name) for r in relations], columns=["id", "kb", "name"]),
            "triples": pd.DataFrame([(kb, t.head, t.relation, t.tail, t.split) for t in triples],
                                    columns=["kb", "head", "relation", "tail", "split"]),
        }
        with self.transaction():
            for t in frames:
                self.con.execute(f"DELETE FROM {t} WHERE kb = ?", [kb])
            self.con.execute("DELETE FROM passages WHERE source = ?", [kb])
            for t, df in frames.items():
                if len(df):
                    self.con.register("_kira_kb_rows", df)
                    try:
                        self.con.execute(f"INSERT INTO {t} SELECT * FROM _kira_kb_rows")
                    finally:
                        self.con.unregister("_kira_kb_rows")
            self.add_passages(passages)

    def list_kbs(self) -> list[str]:
        return [r[0] for r in self.con.execute("SELECT DISTINCT kb FROM entities ORDER BY kb").fetchall()]

    # ---- tables -----------------------------------------------------------------------------
    def add_table(self, name: str, df, caption: str = "", source: str = "",
                  original_columns: list[str] | None = None, metadata: dict | None = None) -> None:
        """Store a DataFrame as DuckDB table ``t_<name>`` with a catalogue row (replaces same name)."""
        sql_name = table_sql_name(name)
        with self.transaction():
            self.con.register("_new_table", df)
            self.con.execute(f'CREATE OR REPLACE TABLE "{sql_name}" AS SELECT * FROM _new_table')
            self.con.unregister("_new_table")
            types = [r[1] for r in self.con.execute(f"DESCRIBE \"{sql_name}\"").fetchall()]
            self.con.execute("DELETE FROM table_catalog WHERE name = ?", [name])
            self.con.execute(
                "INSERT INTO table_catalog VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [name, caption, json.dumps(list(map(str, df.columns))),
                 json.dumps(original_columns or list(map(str, df.columns))), json.dumps(types),
                 len(df), source, json.dumps(metadata or {})],
            )

    def list_tables(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT * FROM table_catalog ORDER BY name")
        cols = [d[0] for d in cur.description]
        out = []
        for r in cur.fetchall():
            d = dict(zip(cols, r, strict=True))
            for k in ("columns", "original_columns", "types", "metadata"):
                d[k] = json.loads(d[k]) if d[k] else None
            out.append(d)
        return out

    def get_table(self, name: str):
        """The table as a pandas DataFrame."""
        return self.con.execute(f'SELECT * FROM "{table_sql_name(name)}"').df()

    def drop_table(self, name: str) -> None:
        with self.transaction():
            self.con.execute(f'DROP TABLE IF EXISTS "{table_sql_name(name)}"')
            self.con.execute("DELETE FROM table_catalog WHERE name = ?", [name])

    # ---- snapshots ----------------------------------------------------------------------------
    def write_snapshot(self, path: str | Path) -> dict[str, int]:
        """Copy every table of the store (as this connection sees it, uncommitted changes of its
        own transaction included) into a new DuckDB file at ``path``; returns rows per table.

        WHY: DuckDB allows one read-write process or many read-only ones, never both. An index
        version carries this copy so the server and ``kira ask`` read KB facts and tables of that
        exact version read-only while a writer holds the live store.
        """
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.unlink(missing_ok=True)
        names = [r[0] for r in self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = 'main' ORDER BY table_name").fetchall()]
        counts: dict[str, int] = {}
        snap = duckdb.connect(str(tmp))
        try:
            snap.execute(SCHEMA)
            known = {r[0] for r in snap.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
            for name in names:
                batches = self.con.sql(f'SELECT * FROM "{name}"').to_arrow_reader(50_000)  # noqa: F841
                if name in known:
                    snap.execute(f'INSERT INTO "{name}" SELECT * FROM batches')
                else:
                    snap.execute(f'CREATE TABLE "{name}" AS SELECT * FROM batches')
                counts[name] = snap.execute(f'SELECT count(*) FROM "{name}"').fetchall()[0][0]
            snap.execute("CHECKPOINT")
        finally:
            snap.close()
        tmp.replace(path)
        return counts

    # ---- index manifests --------------------------------------------------------------------
    def record_index_version(self, version: str, status: str, manifest: dict) -> None:
        with self.transaction():
            self.con.execute("DELETE FROM index_versions WHERE version = ?", [version])
            self.con.execute("INSERT INTO index_versions VALUES (?, ?, ?, ?)",
                             [version, _now(), status, json.dumps(manifest)])

    def list_index_versions(self) -> list[dict[str, Any]]:
        rows = self.con.execute("SELECT version, created_at, status, manifest FROM index_versions ORDER BY version").fetchall()
        return [{"version": v, "created_at": c, "status": s, "manifest": json.loads(m)} for v, c, s, m in rows]


def open_store(path: str | Path, read_only: bool = False) -> DuckDBStore:
    """The one place outside tests that constructs the store type (``kira.workspace`` decides who
    may open which file how)."""
    return DuckDBStore(path, read_only=read_only)
