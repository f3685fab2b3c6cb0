"""Sketch queries (WikiSQL family) built into SQL from validated parts, run in DuckDB on the whole table.

A ``Query`` is the sketch: aggregation, SELECT column, ORDER BY column (ARGMAX/ARGMIN) and WHERE
conditions ``(column, operator, value)``. ``build_sql`` turns it into SQL using only identifiers the
schema made (``c3``, ``n3``, ``d3``, ``__row``), operators and functions from fixed lists, and values as
bound parameters -- nothing from the question or the user's headers is ever concatenated into SQL.
``execute`` runs it on the schema's frame (registered as ``t``) and returns the answer values, the
cells it read (row, column of the frame) and the SQL text.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import duckdb

from kira.tables.linking import Column, TableSchema
from kira.tables.values import cell_text

# Operators of the sketch. COUNT_DISTINCT is reported as COUNT.
AGGS = ("NONE", "COUNT", "SUM", "AVG", "MIN", "MAX", "ARGMAX", "ARGMIN", "COUNT_DISTINCT")
OPS = ("=", ">", "<", ">=", "<=")
REPORTED = {"COUNT_DISTINCT": "COUNT"}
NEEDS_SELECT = {"NONE", "SUM", "AVG", "MIN", "MAX", "ARGMAX", "ARGMIN", "COUNT_DISTINCT"}
NEEDS_ORDER = {"ARGMAX", "ARGMIN"}
_IDENT = re.compile(r"^(c|n|d)\d+$|^__row$")
MAX_CELLS = 500


class QueryError(ValueError):
    """A sketch that cannot be built into SQL for this table (wrong kind, unknown column, …)."""


@dataclass
class Condition:
    column: int
    op: str
    value: Any
    kind: str = "cell"  # cell | number | year | date | bool: how the value compares with the column


@dataclass
class Query:
    aggregation: str
    select: int | None
    order: int | None = None
    conditions: list[Condition] = field(default_factory=list)

    def describe(self, schema: TableSchema) -> str:
        def name(i):
            return "*" if i is None else schema.headers[i]
        conds = " AND ".join(f"{name(c.column)} {c.op} {c.value!r}" for c in self.conditions)
        return f"{self.aggregation}({name(self.select)})" + (f" BY {name(self.order)}" if self.order is not None
                                                           else "") + (f" WHERE {conds}" if conds else "")


def _q(ident: str) -> str:
    if not _IDENT.match(ident):
        raise QueryError(f"not a schema identifier: {ident!r}")
    return f'"{ident}"'


def _col(schema: TableSchema, i: int | None) -> Column:
    if i is None or not isinstance(i, int) or not 0 <= i < len(schema.columns):
        raise QueryError(f"no column {i!r}")
    return schema.columns[i]


def _param(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if hasattr(v, "to_pydatetime"):
        v = v.to_pydatetime()
    if not isinstance(v, (str, int, float, bool, date, datetime)) or v is None:
        raise QueryError(f"unsupported value {v!r}")
    return v


def _condition_sql(schema: TableSchema, c: Condition) -> tuple[str, Any]:
    col = _col(schema, c.column)
    if c.op not in OPS:
        raise QueryError(f"unknown operator {c.op!r}")
    if c.kind == "cell":
        if c.op != "=" and col.kind != "text":
            raise QueryError("cells compare with =")
        if col.kind not in ("text",):
            raise QueryError(f"a cell value needs a text column, {col.name!r} is {col.kind}")
        return f"{_q(col.ident)} = ?", _param(c.value)
    if c.kind == "bool":
        if col.kind != "bool" or c.op != "=":
            raise QueryError("yes/no values need a yes/no column and =")
        return f"{_q(col.ident)} = ?", bool(c.value)
    if c.kind == "number":
        if col.num_ident is None:
            raise QueryError(f"{col.name!r} holds no numbers")
        return f"{_q(col.num_ident)} {c.op} ?", float(c.value)
    if c.kind == "year":
        if col.date_ident is None:
            raise QueryError(f"{col.name!r} holds no dates")
        return f"year({_q(col.date_ident)}) {c.op} ?", int(c.value)
    if c.kind == "month":  # value: the month's first day
        if col.date_ident is None or not isinstance(c.value, date):
            raise QueryError(f"{col.name!r} holds no dates")
        first = date(c.value.year, c.value.month, 1)
        nxt = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        d = f"CAST({_q(col.date_ident)} AS DATE)"
        if c.op == "=":
            return f"({d} >= ? AND {d} < ?)", [first, nxt]
        return {"<": (f"{d} < ?", first), "<=": (f"{d} < ?", nxt), ">": (f"{d} >= ?", nxt),
                ">=": (f"{d} >= ?", first)}[c.op]
    if c.kind == "date":
        if col.date_ident is None or not isinstance(c.value, date):
            raise QueryError(f"{col.name!r} holds no dates")
        d = c.value if not isinstance(c.value, datetime) else c.value.date()
        return f"CAST({_q(col.date_ident)} AS DATE) {c.op} ?", d
    raise QueryError(f"unknown value kind {c.kind!r}")


def build_sql(schema: TableSchema, q: Query) -> tuple[str, list[Any]]:
    """(SQL over table ``t``, bound parameters). The first result column is the answer; ``__row`` is
    the frame row it came from where the query returns rows."""
    if q.aggregation not in AGGS:
        raise QueryError(f"unknown aggregation {q.aggregation!r}")
    where, params = [], []
    for c in q.conditions:
        sql, p = _condition_sql(schema, c)
        where.append(sql)
        params += p if isinstance(p, list) else [p]
    agg = q.aggregation
    sel = _col(schema, q.select) if agg in NEEDS_SELECT else None
    order = _col(schema, q.order) if agg in NEEDS_ORDER else None
    if agg == "COUNT":
        head = "SELECT count(*) FROM t"
    elif agg == "COUNT_DISTINCT":
        head = f"SELECT count(DISTINCT {_q(sel.ident)}) FROM t"
    elif agg in ("SUM", "AVG"):
        if sel.num_ident is None:
            raise QueryError(f"{agg} needs numbers; {sel.name!r} holds none")
        head = f"SELECT {agg.lower()}({_q(sel.num_ident)}) FROM t"
    elif agg in ("MIN", "MAX"):
        key = sel.num_ident or sel.date_ident
        if key is None and sel.kind != "text":
            key = sel.ident
        if key is None:
            raise QueryError(f"{agg} needs numbers or dates; {sel.name!r} is text")
        if key == sel.ident:
            head = f"SELECT {agg.lower()}({_q(key)}) FROM t"
        else:  # numeric / date text: the extreme row's own cell text
            where.append(f"{_q(key)} IS NOT NULL")
            direction = "DESC" if agg == "MAX" else "ASC"
            w = (" WHERE " + " AND ".join(where)) if where else ""
            return (f"SELECT {_q(sel.ident)}, \"__row\" FROM t{w} ORDER BY {_q(key)} {direction}, \"__row\" "
                    "LIMIT 1"), params
    elif agg in ("ARGMAX", "ARGMIN"):
        key = order.num_ident or order.date_ident or (order.ident if order.kind != "text" else None)
        if key is None:
            raise QueryError(f"{agg} orders by numbers or dates; {order.name!r} is text")
        where.append(f"{_q(key)} IS NOT NULL")
        direction = "DESC" if agg == "ARGMAX" else "ASC"
        w = " WHERE " + " AND ".join(where)
        return (f"SELECT {_q(sel.ident)}, \"__row\" FROM t{w} ORDER BY {_q(key)} {direction}, \"__row\" "
                "LIMIT 1"), params
    else:  # NONE
        w = (" WHERE " + " AND ".join(where)) if where else ""
        return f"SELECT {_q(sel.ident)}, \"__row\" FROM t{w} ORDER BY \"__row\" LIMIT {MAX_CELLS}", params
    w = (" WHERE " + " AND ".join(where)) if where else ""
    return head + w, params


@dataclass
class Execution:
    values: list[str]
    cells: list[tuple[int, int]]
    sql: str
    params: list[Any]
    empty: bool


def execute(schema: TableSchema, q: Query, con: duckdb.DuckDBPyConnection | None = None) -> Execution:
    """Run the query on the whole table; values are cell texts (distinct, in table order) or [aggregate]."""
    sql, params = build_sql(schema, q)
    own = con is None
    con = con or duckdb.connect()
    try:
        con.register("t", schema.frame)
        rows = con.execute(sql, params).fetchall()
        agg = q.aggregation
        if agg in ("NONE", "ARGMAX", "ARGMIN") or (rows and len(rows[0]) == 2):
            values, cells = [], []
            for v, r in rows:
                t = cell_text(v)
                if t not in values:
                    values.append(t)
                cells.append((int(r), q.select))
            if agg in ("ARGMAX", "ARGMIN") and q.order is not None and cells:
                cells.append((cells[0][0], q.order))
            return Execution(values, cells, sql, params, not values or values == [""])
        value = rows[0][0] if rows else None
        empty = value is None
        values = [] if empty else [cell_text(float(value) if agg == "AVG" else value)]
        # the cells it read: the matching rows of the aggregated (or first filtered) column, capped
        col = q.select if agg in NEEDS_SELECT else (q.conditions[0].column if q.conditions else None)
        cells = []
        if col is not None:
            wsql, wparams = build_sql(schema, Query("NONE", col, conditions=q.conditions))
            cells = [(int(r), col) for _, r in con.execute(wsql, wparams).fetchall()]
        if agg == "COUNT" and value == 0:
            empty = True
        return Execution(values, cells, sql, params, empty)
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister("t")
        if own:
            con.close()
