"""Training and evaluation questions generated from the user's own tables by executing SQL.

WHY: there is no public table-QA set offline, but every table answers questions about itself.
For small *views* of a table (a few sampled rows and columns, so the whole view fits TAPAS's
window) we fill SQL templates — lookup, filter-then-select, COUNT, SUM, AVERAGE, MIN/MAX as
selection, two-way comparison — run them on DuckDB, and record the answer, the answer cell
coordinates and the aggregation operator (what TAPAS supervision needs). Each template has several
phrasings. Splits are by *table*, so evaluation is on tables the model never saw.

A question row: ``{"table", "question", "answers", "aggregation", "coordinates", "float_answer",
"view": {"rows", "columns"}, "template", "sql"}``; ``view`` names the rows (in table order) and
columns the question is about, and coordinates are (row, column) inside that view.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from kira.tables.linearize import column_kind
from kira.tables.values import cell_text

PHRASINGS: dict[str, list[str]] = {
    "lookup": ["What is the {c} of {v}?", "What {c} does {v} have?", "Give the {c} for {k} {v}.",
               "For {k} {v}, what is the {c}?"],
    "filter_select": ["Which {k} have {n} {op} {x}?", "List the {k} with {n} {op} {x}.",
                      "What are the {k} whose {n} is {op} {x}?"],
    "count": ["How many rows have {c} {v}?", "How many entries have {c} equal to {v}?",
              "What is the number of records where {c} is {v}?", "Count the rows with {c} {v}."],
    "count_cmp": ["How many rows have {n} {op} {x}?", "How many entries have a {n} {op} {x}?",
                  "Count the records whose {n} is {op} {x}."],
    "sum": ["What is the total {n} for {c} {v}?", "What is the sum of {n} where {c} is {v}?",
            "What is the combined {n} of rows with {c} {v}?"],
    "sum_all": ["What is the total {n}?", "What is the sum of all {n}?", "Add up the {n} values."],
    "avg": ["What is the average {n} for {c} {v}?", "What is the mean {n} where {c} is {v}?",
            "On average, what is the {n} of rows with {c} {v}?"],
    "avg_all": ["What is the average {n}?", "What is the mean {n}?", "What is the {n} on average?"],
    "argmax": ["Which {k} has the {hi} {n}?", "What {k} has the {hi} {n}?", "Name the {k} with the {hi} {n}."],
    "max_value": ["What is the {hi} {n}?", "What is the {hi} value of {n}?"],
    "compare": ["Which has the {more} {n}, {v1} or {v2}?", "Between {v1} and {v2}, which has the {more} {n}?",
                "Does {v1} or {v2} have the {more} {n}?"],
}
AGG_OF = {"lookup": "NONE", "filter_select": "NONE", "count": "COUNT", "count_cmp": "COUNT", "sum": "SUM",
          "sum_all": "SUM", "avg": "AVERAGE", "avg_all": "AVERAGE", "argmax": "NONE", "max_value": "NONE",
          "compare": "NONE"}


@dataclass
class TableQuestion:
    table: str
    question: str
    answers: list[str]
    aggregation: str
    coordinates: list[tuple[int, int]]
    float_answer: float | None
    view: dict[str, list]
    template: str
    sql: str
    split: str = "train"
    params: list = field(default_factory=list)

    def to_json(self) -> str:
        d = asdict(self)
        d["coordinates"] = [list(c) for c in self.coordinates]
        return json.dumps(d, default=str)


def human(column: str) -> str:
    """How a (snake_case) column is named in questions and in the header TAPAS reads."""
    return column.replace("_", " ")


def view_frame(df: pd.DataFrame, rows: Sequence[int] | None, columns: Sequence[str] | None) -> pd.DataFrame:
    """The rows/columns a question is about, re-indexed from 0, headers humanised."""
    v = df if columns is None else df[list(columns)]
    if rows is not None:
        v = v.iloc[list(rows)]
    v = v.reset_index(drop=True)
    v.columns = [human(str(c)) for c in v.columns]
    return v


def _is_numeric(s: pd.Series, dtype: str) -> bool:
    return column_kind(dtype) == "real" and "BOOL" not in dtype.upper() and s.notna().all()


def _py(v):
    """numpy / pandas scalars as plain Python values DuckDB can bind."""
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    return v.item() if hasattr(v, "item") else v


def _q(col: str) -> str:
    return '"' + col.replace('"', '""') + '"'


class _ViewSQL:
    """One view registered in a private DuckDB connection as ``t`` with its row number ``__r``."""

    def __init__(self, con: duckdb.DuckDBPyConnection, view: pd.DataFrame):
        self.con, self.cols = con, list(view.columns)
        frame = view.copy()
        frame.insert(0, "__r", range(len(frame)))
        con.register("t", frame)

    def rows(self, sql: str, params: list) -> list[tuple]:
        return self.con.execute(sql, [_py(p) for p in params]).fetchall()

    def ci(self, col: str) -> int:
        return self.cols.index(col)


def _templates_for_view(sq: _ViewSQL, view: pd.DataFrame, types: dict[str, str], rng: random.Random):
    """Yield (template, params-for-phrasing, sql, sql-params, coords, answer-values, aggregation)."""
    cols = list(view.columns)
    nums = [c for c in cols if _is_numeric(view[c], types[c])]
    texts = [c for c in cols if column_kind(types[c]) in ("text", "date") and view[c].notna().all()
             and "BOOL" not in types[c].upper()]
    keys = [c for c in texts if view[c].map(cell_text).nunique() == len(view)]
    cats = [c for c in texts if view[c].map(cell_text).nunique() < len(view)]
    out = []

    def txt(v) -> str:
        return cell_text(v)

    if keys:  # lookup
        k = rng.choice(keys)
        targets = [c for c in cols if c != k]
        if targets:
            c = rng.choice(targets)
            r = rng.randrange(len(view))
            v = view[k].iloc[r]
            sql = f"SELECT __r, {_q(c)} FROM t WHERE {_q(k)} = ?"
            res = sq.rows(sql, [v])
            out.append(("lookup", dict(c=c, v=txt(v), k=k), sql, [v], [(x[0], sq.ci(c)) for x in res],
                        [txt(x[1]) for x in res]))
    if nums and keys:  # filter then select
        k, n = rng.choice(keys), rng.choice(nums)
        x = view[n].iloc[rng.randrange(len(view))]
        op, sym = rng.choice([("greater than", ">"), ("less than", "<")])
        sql = f"SELECT __r, {_q(k)} FROM t WHERE {_q(n)} {sym} ? ORDER BY __r"
        res = sq.rows(sql, [x])
        if 1 <= len(res) <= 4:
            out.append(("filter_select", dict(k=k, n=n, op=op, x=txt(x)), sql, [x],
                        [(y[0], sq.ci(k)) for y in res], [txt(y[1]) for y in res]))
    if cats:  # COUNT / SUM / AVERAGE filtered by a category value
        c = rng.choice(cats)
        v = view[c].iloc[rng.randrange(len(view))]
        sql = f"SELECT __r FROM t WHERE {_q(c)} = ? ORDER BY __r"
        rows = [y[0] for y in sq.rows(sql, [v])]
        (cnt,) = sq.rows(f"SELECT count(*) FROM t WHERE {_q(c)} = ?", [v])[0]
        out.append(("count", dict(c=c, v=txt(v)), f"SELECT count(*) FROM t WHERE {_q(c)} = ?", [v],
                    [(r, sq.ci(c)) for r in rows], [str(cnt)]))
        if nums:
            n = rng.choice(nums)
            for tpl, fn in (("sum", "sum"), ("avg", "avg")):
                s = f"SELECT {fn}({_q(n)}) FROM t WHERE {_q(c)} = ?"
                (val,) = sq.rows(s, [v])[0]
                out.append((tpl, dict(n=n, c=c, v=txt(v)), s, [v], [(r, sq.ci(n)) for r in rows],
                            [cell_text(float(val))]))
    if nums:
        n = rng.choice(nums)
        for tpl, fn in (("sum_all", "sum"), ("avg_all", "avg")):
            s = f"SELECT {fn}({_q(n)}) FROM t"
            (val,) = sq.rows(s, [])[0]
            out.append((tpl, dict(n=n), s, [], [(r, sq.ci(n)) for r in range(len(view))],
                        [cell_text(float(val))]))
        x = view[n].iloc[rng.randrange(len(view))]
        op, sym = rng.choice([("greater than", ">"), ("less than", "<")])
        s = f"SELECT __r FROM t WHERE {_q(n)} {sym} ? ORDER BY __r"
        rows = [y[0] for y in sq.rows(s, [x])]
        if rows:
            out.append(("count_cmp", dict(n=n, op=op, x=txt(x)), f"SELECT count(*) FROM t WHERE {_q(n)} {sym} ?",
                        [x], [(r, sq.ci(n)) for r in rows], [str(len(rows))]))
        desc = rng.random() < 0.5
        hi = "highest" if desc else "lowest"
        order = "DESC" if desc else "ASC"
        top = sq.rows(f"SELECT __r, {_q(n)} FROM t ORDER BY {_q(n)} {order} LIMIT 2", [])
        unique = len(top) == 1 or top[0][1] != top[1][1]
        if unique:
            s = f"SELECT __r, {_q(n)} FROM t ORDER BY {_q(n)} {order} LIMIT 1"
            out.append(("max_value", dict(n=n, hi=hi), s, [], [(top[0][0], sq.ci(n))], [txt(top[0][1])]))
            if keys:
                k = rng.choice(keys)
                s = f"SELECT __r, {_q(k)} FROM t ORDER BY {_q(n)} {order} LIMIT 1"
                r = sq.rows(s, [])[0]
                out.append(("argmax", dict(k=k, n=n, hi=hi), s, [], [(r[0], sq.ci(k))], [txt(r[1])]))
        if keys and len(view) >= 2:
            k = rng.choice(keys)
            a, b = rng.sample(range(len(view)), 2)
            v1, v2 = view[k].iloc[a], view[k].iloc[b]
            if view[n].iloc[a] != view[n].iloc[b]:
                more = rng.choice(["higher", "lower"])
                s = (f"SELECT __r, {_q(k)} FROM t WHERE {_q(k)} IN (?, ?) ORDER BY {_q(n)} "
                     f"{'DESC' if more == 'higher' else 'ASC'} LIMIT 1")
                r = sq.rows(s, [v1, v2])[0]
                out.append(("compare", dict(k=k, n=n, more=more, v1=txt(v1), v2=txt(v2)), s, [v1, v2],
                            [(r[0], sq.ci(k))], [txt(r[1])]))
    return out


def generate_for_table(name: str, df: pd.DataFrame, types: Sequence[str], n_views: int = 20,
                       min_rows: int = 4, max_rows: int = 8, max_columns: int = 5,
                       per_view: int = 4, seed: int = 0, split: str = "train") -> list[TableQuestion]:
    """Questions over ``n_views`` random views of one table, answered by DuckDB."""
    rng = random.Random(f"{seed}:{name}")
    type_of = dict(zip(df.columns, types, strict=True))
    usable = [c for c in df.columns if not str(type_of[c]).upper().startswith(("STRUCT", "MAP"))
              and "[]" not in str(type_of[c])]
    out: list[TableQuestion] = []
    con = duckdb.connect()
    try:
        for _ in range(n_views):
            if len(df) < 2 or len(usable) < 2:
                break
            n_rows = rng.randint(min(min_rows, len(df)), min(max_rows, len(df)))
            rows = sorted(rng.sample(range(len(df)), n_rows))
            columns = sorted(rng.sample(usable, min(max_columns, len(usable))), key=list(df.columns).index)
            view = view_frame(df, rows, columns)
            vtypes = {human(c): type_of[c] for c in columns}
            sq = _ViewSQL(con, view)
            cands = _templates_for_view(sq, view, vtypes, rng)
            rng.shuffle(cands)
            for tpl, slots, sql, params, coords, answers in cands[:per_view]:
                question = rng.choice(PHRASINGS[tpl]).format(**slots)
                agg = AGG_OF[tpl]
                fa = None
                if agg != "NONE":
                    fa = float(answers[0])
                    fa = fa if math.isfinite(fa) else None
                out.append(TableQuestion(
                    table=name, question=question, answers=answers, aggregation=agg,
                    coordinates=[(int(r), int(c)) for r, c in coords], float_answer=fa,
                    view={"rows": rows, "columns": columns}, template=tpl, sql=sql,
                    params=[cell_text(p) for p in params], split=split))
            con.unregister("t")
    finally:
        con.close()
    return out


def split_tables(names: Iterable[str], heldout_fraction: float = 0.3, seed: int = 0,
                 heldout: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """(train tables, held-out tables): a seeded shuffle unless ``heldout`` names them."""
    names = sorted(names)
    if heldout is not None:
        missing = set(heldout) - set(names)
        if missing:
            raise ValueError(f"held-out tables not in the store: {sorted(missing)}")
        return [n for n in names if n not in heldout], [n for n in names if n in heldout]
    rng = random.Random(seed)
    shuffled = names[:]
    rng.shuffle(shuffled)
    k = max(1, round(len(names) * heldout_fraction)) if len(names) > 1 else 0
    test = sorted(shuffled[:k])
    return [n for n in names if n not in test], test


def generate_from_store(store, tables: Sequence[str] | None = None, heldout_fraction: float = 0.3,
                        heldout: Sequence[str] | None = None, seed: int = 0,
                        **kw) -> list[TableQuestion]:
    """Questions for every (or the named) store table, each tagged with its table's split."""
    catalog = {t["name"]: t for t in store.list_tables()}
    names = list(tables or catalog)
    unknown = [n for n in names if n not in catalog]
    if unknown:
        raise ValueError(f"no such tables: {unknown}")
    train, test = split_tables(names, heldout_fraction, seed, heldout)
    out: list[TableQuestion] = []
    for n in names:
        df = store.get_table(n)
        out += generate_for_table(n, df, catalog[n]["types"], seed=seed,
                                  split="test" if n in test else "train", **kw)
    return out


def write_questions(questions: Iterable[TableQuestion], path: str | Path) -> int:
    from kira.jsonl import write_jsonl

    return write_jsonl(path, (json.loads(q.to_json()) for q in questions))
