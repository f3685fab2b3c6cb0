"""``TableReader``: answers a question from table evidence with the TAPAS model.

WHY: retrieval returns table *chunks*; the reader goes back to the whole table in the store,
takes the TaBERT content snapshot when the table is longer than the model's window, lets TAPAS
select cells and an aggregation, then *executes* that aggregation on the cells (numbers parsed,
units stripped where safe) so the answer is computed, not generated, and cites its cells.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from kira.schema import Answer, BaseReader, Evidence
from kira.tables.generate import view_frame
from kira.tables.linearize import ngrams, snapshot_columns, snapshot_rows
from kira.tables.tapas import TableQAModel
from kira.tables.values import cell_text, execute_aggregation


@dataclass
class TableAnswer:
    text: str
    values: list[str]  # what denotation accuracy compares: selected cells, or [aggregate]
    cells: list[tuple[int, int]]  # (row, column) in the frame given (after undoing the snapshot)
    aggregation: str
    score: float


def answer_frames(model: TableQAModel, frames: Sequence[pd.DataFrame], questions: Sequence[str],
                  batch_size: int = 16) -> list[TableAnswer]:
    """Batched table QA over frames (headers as the model should read them)."""
    snaps, maps, col_maps = [], [], []
    for f, q in zip(frames, questions, strict=True):
        keep = snapshot_rows(f, q, model.snapshot_rows)
        rows = f.iloc[keep].reset_index(drop=True)
        cols = snapshot_columns(rows, q, model.snapshot_columns) if model.snapshot_columns else \
            list(range(rows.shape[1]))
        snaps.append(rows.iloc[:, cols])
        maps.append(keep)
        col_maps.append(cols)
    preds = model.predict(snaps, questions, batch_size=batch_size)
    out = []
    for snap, keep, cols, p in zip(snaps, maps, col_maps, preds, strict=True):
        texts = [cell_text(snap.iat[r, c]) for r, c in p.cells if r < len(snap) and c < snap.shape[1]]
        result = execute_aggregation(p.aggregation, texts) if texts else None
        if result is None:
            out.append(TableAnswer("", [], [], p.aggregation, 0.0))
            continue
        values = texts if p.aggregation == "NONE" else [result]
        cells = [(keep[r], cols[c]) for r, c in p.cells]
        out.append(TableAnswer(result, values, cells, p.aggregation, p.score))
    return out


def lookup_baseline(frame: pd.DataFrame, question: str) -> tuple[list[str], tuple[int, int] | None]:
    """The no-aggregation peer: the cell at the row sharing most question n-grams and the column
    whose name shares most question words (ignoring cells already quoted in the question)."""
    q = ngrams(question, 3)
    qwords = {w for g in q if len(g) == 1 for w in g}
    if frame.empty:
        return [], None
    row_scores = [sum(len(g) for g in q & ngrams(" ".join(cell_text(v) for v in row), 3))
                  for row in frame.itertuples(index=False, name=None)]
    r = max(range(len(frame)), key=lambda i: (row_scores[i], -i))
    best, best_score = None, -1.0
    for c, name in enumerate(frame.columns):
        cell = cell_text(frame.iat[r, c])
        if cell and ngrams(cell, 3) <= q:
            continue  # the question already names this cell: it is the key, not the answer
        words = set(str(name).lower().split())
        score = len(words & qwords) / max(1, len(words))
        if score > best_score:
            best, best_score = c, score
    if best is None:
        return [], None
    return [cell_text(frame.iat[r, best])], (r, best)


class TableReader(BaseReader):
    """A ``kira.schema.Reader`` over ``table`` evidence (``name = "tapas"``)."""

    name = "tapas"

    def __init__(self, model: TableQAModel | str | os.PathLike, store, snapshot_rows: int | None = None):
        self.model = model if isinstance(model, TableQAModel) else TableQAModel.load(model)
        if snapshot_rows:
            self.model.snapshot_rows = snapshot_rows
        self.store = store

    def frame(self, table: str) -> pd.DataFrame:
        return view_frame(self.store.get_table(table), None, None)

    def read_table(self, question: str, table: str, evidence: Evidence | None = None) -> Answer:
        """Answer from a named table (the whole table, snapshot if long)."""
        return self._answers(question, [(table, evidence)])[0]

    def read(self, question: str, evidence: list[Evidence], top_n: int = 1,
             allow_no_answer: bool = True) -> list[Answer]:
        tables: dict[str, Evidence] = {}
        for ev in evidence:
            t = (ev.metadata or {}).get("table")
            if t and (ev.kind == "table" or "rows" in (ev.metadata or {})) and t not in tables:
                tables[t] = ev
        if not tables:
            return []
        answers = [a for a in self._answers(question, list(tables.items())) if allow_no_answer or not a.no_answer]
        answers.sort(key=lambda a: (a.no_answer, -a.score))
        return answers[:top_n]

    def _answers(self, question: str, items: list[tuple[str, Evidence | None]]) -> list[Answer]:
        frames = [self.frame(t) for t, _ in items]
        results = answer_frames(self.model, frames, [question] * len(items))
        out = []
        for (table, ev), frame, res in zip(items, frames, results, strict=True):
            rows = sorted({r for r, _ in res.cells})
            cells_text = " ; ".join(f"row {r} | {frame.columns[c]} | {cell_text(frame.iat[r, c])}"
                                    for r, c in res.cells)
            meta = {**(ev.metadata if ev else {}), "table": table,
                    "rows": [rows[0], rows[-1]] if rows else [], "cells": [[r, c] for r, c in res.cells]}
            cited = Evidence(id=ev.id if ev else f"{table}:cells", title=ev.title if ev else table,
                             text=ev.text if ev else cells_text, score=ev.score if ev else res.score,
                             kind="table", source=ev.source if ev else table,
                             retriever=ev.retriever if ev else "", metadata=meta)
            out.append(Answer(text=res.text, score=res.score, evidence=[cited], reader=self.name,
                              retriever=ev.retriever if ev else "", cells=res.cells or None,
                              aggregation=res.aggregation, no_answer=not res.text))
        return out
