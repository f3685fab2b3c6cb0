"""TaBERT-style linearization: a table becomes retrievable passages, and a question-time snapshot.

WHY: BM25 and dense retrievers index text, so each table is written as caption + per-row
``column | type | value`` cells (Yin et al. 2020, TaBERT). Long tables are split into row chunks
that each repeat the caption and header, so any chunk is readable on its own. At question time
the *content snapshot* keeps the K rows sharing most n-grams with the question, so a long table
fits the encoder's window.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from kira.schema import Passage
from kira.tables.values import cell_text

_TOKEN = re.compile(r"\w+")


def column_kind(duckdb_type: str) -> str:
    """TaBERT's coarse column type: ``real`` for numbers, ``date`` for dates/times, else ``text``."""
    t = duckdb_type.upper()
    if any(k in t for k in ("INT", "DOUBLE", "FLOAT", "DECIMAL", "REAL", "NUMERIC")):
        return "real"
    if any(k in t for k in ("DATE", "TIME")):
        return "date"
    return "text"


def row_text(columns: Sequence[str], kinds: Sequence[str], row: Sequence[Any]) -> str:
    return " ; ".join(f"{c} | {k} | {cell_text(v)}" for c, k, v in zip(columns, kinds, row, strict=True))


def linearize_table(name: str, df: pd.DataFrame, caption: str, types: Sequence[str], source: str,
                    display_columns: Sequence[str] | None = None, max_words: int = 150) -> list[Passage]:
    """Passages for one table: row chunks of about ``max_words`` words, each with caption + header.

    Ids are ``<source>:<n>`` (stable across rebuilds); metadata carries the table and row range.
    """
    columns = list(display_columns or df.columns)
    kinds = [column_kind(t) for t in types]
    header = f"{caption}. columns: " + " | ".join(columns)
    head_words = len(header.split())
    passages: list[Passage] = []
    rows: list[str] = []
    first = 0
    words = head_words

    def flush(last: int) -> None:
        text = header + "\n" + "\n".join(rows)
        passages.append(Passage(id=f"{source}:{len(passages)}", title=caption, text=text, source=source,
                                metadata={"table": name, "rows": [first, last], "kind": "table"}))

    for i, row in enumerate(df.itertuples(index=False, name=None)):
        line = f"row {i}: " + row_text(columns, kinds, row)
        n = len(line.split())
        if rows and words + n > max_words:
            flush(i - 1)
            rows, first, words = [], i, head_words
        rows.append(line)
        words += n
    if rows or not passages:
        flush(max(first, len(df) - 1) if rows else -1)
    return passages


def ngrams(text: str, n: int = 3) -> set[tuple[str, ...]]:
    toks = _TOKEN.findall(text.lower())
    return {tuple(toks[i:i + k]) for k in range(1, n + 1) for i in range(len(toks) - k + 1)}


def snapshot_rows(df: pd.DataFrame, question: str, k: int = 8, n: int = 3) -> list[int]:
    """Indices (in table order) of the ``k`` rows with most question n-grams among their cells.

    Ties keep table order, so a question with no overlap sees the table's first rows."""
    if len(df) <= k:
        return list(range(len(df)))
    q = ngrams(question, n)
    scores = []
    for i, row in enumerate(df.itertuples(index=False, name=None)):
        cells = ngrams(" ".join(cell_text(v) for v in row), n)
        # longer n-grams count more: a matching "new york" beats two matching "new"s
        scores.append((-sum(len(g) for g in q & cells), i))
    keep = sorted(i for _, i in sorted(scores)[:k])
    return keep


def snapshot_columns(df: pd.DataFrame, question: str, k: int = 3, n: int = 3) -> list[int]:
    """Indices (in table order) of the ``k`` columns a question is most about.

    WHY: the column counterpart of the row snapshot -- a model trained on narrow views reads a
    wide table as narrow views too. A column scores for question words in its header (the
    column asked about) and for a cell quoted in the question (the key column naming the row);
    ties keep table order."""
    if df.shape[1] <= k:
        return list(range(df.shape[1]))
    q = ngrams(question, n)
    scores = []
    for c, name in enumerate(df.columns):
        header = ngrams(str(name).replace("_", " "), n)
        quoted = any((g := ngrams(cell_text(v), n)) and g <= q for v in df.iloc[:, c].tolist())
        scores.append((-(2 * sum(len(x) for x in q & header) + int(quoted)), c))
    return sorted(c for _, c in sorted(scores)[:k])


def snapshot(df: pd.DataFrame, question: str, k: int = 8) -> tuple[pd.DataFrame, list[int]]:
    """The snapshot table (rows re-indexed 0..k-1) and the original row index of each of its rows."""
    keep = snapshot_rows(df, question, k)
    return df.iloc[keep].reset_index(drop=True), keep
