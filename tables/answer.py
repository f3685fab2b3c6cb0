"""Table answers for ``kira ask`` and ``/v1/ask``: route the question to a table, answer it with the
semantic parser over the whole table (TAPAS where it is more confident on a small table), and show
the SQL and the cells read as evidence.

WHY: the TAPAS reader only saw the few rows of a retrieved table chunk, so counts, sums and
"which row has the most …" over a real table could not come out right. Routing uses the retriever's
table chunks *and* header/value/caption matches over every table of the version's snapshot, so a
question reaches its table even when no chunk of it ranked high.
"""

from __future__ import annotations

from typing import Any

from kira.schema import Answer, BaseReader, Evidence
from kira.tables.hybrid import choose
from kira.tables.linking import TableSchema
from kira.tables.parser import TableParser, pick_table, table_frame
from kira.tables.values import cell_text

MIN_TABLE_SCORE = 0.2  # pick_table score under which a question is taken as not about any table


class ParserTableReader(BaseReader):
    """A ``Reader`` over tables: ``read(question, evidence)`` → answers with SQL and cells."""

    name = "table-parser"

    def __init__(self, parser_dir: str, store, tapas_dir: str | None = None):
        self.parser = TableParser.load(parser_dir)
        self.store = store
        self.tapas = None
        if tapas_dir:
            from kira.tables.tapas import TableQAModel

            self.tapas = TableQAModel.load(tapas_dir)
        self._tables = {t["name"]: t for t in store.list_tables()}
        self._frames: dict[str, Any] = {}
        self._schemas: dict[str, TableSchema] = {}

    def frame(self, name: str):
        if name not in self._frames:
            self._frames[name] = table_frame(self.store, name)
        return self._frames[name]

    def schema(self, name: str) -> TableSchema:
        """The parsed columns and cell index of a table, built once per snapshot (~30 ms for a few
        thousand rows; routing reads every table's for every question)."""
        if name not in self._schemas:
            self._schemas[name] = TableSchema(self.frame(name))
        return self._schemas[name]

    def route(self, question: str, evidence: list[Evidence]) -> tuple[str, float] | None:
        """The table a question is about, with its score: retrieved table chunks first in a tie."""
        if not self._tables:
            return None
        captions = {n: t.get("caption") or n for n, t in self._tables.items()}
        ranked = pick_table(question, {n: self.schema(n) for n in self._tables}, captions)
        retrieved = {(e.metadata or {}).get("table") for e in evidence if e.kind == "table"}
        best = max(ranked, key=lambda x: (x[1] + (0.05 if x[0] in retrieved else 0.0)), default=None)
        return best if best and best[1] >= MIN_TABLE_SCORE else None

    def read(self, question: str, evidence: list[Evidence], top_n: int = 1,
             allow_no_answer: bool = True) -> list[Answer]:
        routed = self.route(question, evidence)
        if routed is None:
            return []
        name, table_score = routed
        frame = self.frame(name)
        parsed = self.parser.answer(question, self.schema(name))
        tapas_ans = None
        if self.tapas is not None and len(frame) <= self.tapas.snapshot_rows:
            from kira.tables.reader import answer_frames

            tapas_ans = answer_frames(self.tapas, [frame], [question])[0]
        choice = choose(parsed, tapas_ans, len(frame), self.parser.calibration,
                        tapas_rows=self.tapas.snapshot_rows if self.tapas is not None else 0)
        if choice.reader == "none" or not choice.values:
            return []
        used = parsed if choice.reader == "parser" else None
        cells = [tuple(c) for c in ((used.cells if used else choice.tapas.cells) or [])][:50]
        shown = " ; ".join(f"row {r} | {frame.columns[c]} | {cell_text(frame.iat[r, c])}" for r, c in cells[:10])
        info = self._tables[name]
        sql = used.sql if used else ""
        params = [str(p) for p in used.params] if used else []
        aggregation = used.aggregation if used else choice.tapas.aggregation
        head = f"{sql}  -- params {params}" if sql else "TAPAS cell selection"
        ev = Evidence(id=f"table:{name}", title=info.get("caption") or name,
                      text=head + (f"\n{shown}" if shown else ""), score=table_score, kind="table",
                      source=info.get("source") or name, retriever="table-router",
                      metadata={"table": name, "sql": sql, "params": params, "cells": [list(c) for c in cells],
                                "aggregation": aggregation, "table_score": table_score,
                                "confidence": choice.confidence, "table_reader": choice.reader})
        return [Answer(text=", ".join(choice.values), score=float(choice.confidence), evidence=[ev],
                       reader=f"{self.name}:{choice.reader}", retriever="table-router", cells=cells or None,
                       aggregation=aggregation, probability=float(choice.confidence))][:top_n]
