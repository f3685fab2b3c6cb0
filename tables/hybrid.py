"""Parser vs TAPAS: choose per question by calibrated confidence, and evaluate both side by side.

WHY: the semantic parser runs SQL over the whole table, so aggregates over long tables can be right;
TAPAS reads a snapshot of a few rows and selects cells, which suits small tables and cell selection.
``choose`` picks, per question, the reader whose *calibrated* probability of being right is higher
(both calibrated on synthetic held-out tables when the parser was trained, never on an evaluation
set); TAPAS is only a candidate when the whole table fits its snapshot. A parser abstention because
the asked attribute links to no column is kept (no reader can answer it from this table).

``evaluate_tables`` reports, in one run, the chosen answers, the parser alone, TAPAS alone and the
single-cell lookup baseline, overall and by the gold operator when rows carry one (else by the
operator the parser predicted, labelled so).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from kira.tables.linking import TableSchema
from kira.tables.parser import ParsedAnswer, TableParser, _calibrate
from kira.tables.values import denotation_correct


@dataclass
class Choice:
    reader: str  # parser | tapas | none
    values: list[str]
    confidence: float
    parsed: ParsedAnswer | None
    tapas: Any = None


def choose(parsed: ParsedAnswer | None, tapas_answer: Any, n_rows: int, calibration: dict | None,
           tapas_rows: int) -> Choice:
    cal = calibration or {}
    p_conf = parsed.confidence if parsed is not None and not parsed.abstained else 0.0
    if parsed is not None and parsed.abstained and parsed.reason.startswith("the question asks for an attribute"):
        return Choice("none", [], parsed.confidence, parsed, tapas_answer)
    t_ok = tapas_answer is not None and tapas_answer.values and n_rows <= tapas_rows and cal.get("tapas")
    t_conf = _calibrate(tapas_answer.score, cal.get("tapas")) if t_ok else 0.0
    if parsed is not None and not parsed.abstained and p_conf >= t_conf:
        return Choice("parser", parsed.values, p_conf, parsed, tapas_answer)
    if t_ok:
        return Choice("tapas", list(tapas_answer.values), t_conf, parsed, tapas_answer)
    if parsed is not None and parsed.values:
        return Choice("parser", parsed.values, p_conf, parsed, tapas_answer)
    return Choice("none", [], 0.0, parsed, tapas_answer)


def evaluate_tables(store, rows: Sequence[dict], parser: TableParser | None = None, tapas=None,
                    batch_size: int = 16) -> dict[str, Any]:
    """Denotation accuracy of the chosen answer, the parser, TAPAS and the lookup baseline (same run)."""
    from kira.tables.evaluate import question_frames
    from kira.tables.parser import table_frame
    from kira.tables.reader import answer_frames, lookup_baseline

    frames = question_frames(store, rows)
    questions = [r["question"] for r in rows]
    parsed: list[ParsedAnswer | None] = [None] * len(rows)
    if parser is not None:
        schemas: dict[str, TableSchema] = {}
        sch = []
        for r, f in zip(rows, frames, strict=True):
            if r.get("view"):
                sch.append(TableSchema(f))
                continue
            if r["table"] not in schemas:
                schemas[r["table"]] = TableSchema(table_frame(store, r["table"]))
            sch.append(schemas[r["table"]])
        parsed = parser.answer_many(questions, sch, batch_size=batch_size)
    tapas_ans: list[Any] = [None] * len(rows)
    if tapas is not None:
        tapas_ans = answer_frames(tapas, frames, questions, batch_size=batch_size)
    gold_ops = bool(rows) and all(r.get("aggregation") for r in rows)
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    chosen_by = defaultdict(int)
    examples = []
    cal = parser.calibration if parser is not None else {}
    snap = getattr(tapas, "snapshot_rows", 0) or 0
    for r, f, p, t in zip(rows, frames, parsed, tapas_ans, strict=True):
        gold = r["answers"]
        base_vals, _ = lookup_baseline(f, r["question"])
        c = choose(p, t, len(f), cal, snap) if (p is not None or t is not None) else Choice("none", [], 0.0, None)
        chosen_by[c.reader] += 1
        res = {"chosen": denotation_correct(c.values, gold),
               "baseline": denotation_correct(base_vals, gold)}
        if p is not None:
            res["parser"] = not p.abstained and denotation_correct(p.values, gold)
        if t is not None:
            res["tapas"] = denotation_correct(t.values, gold)
        kind = r.get("aggregation") if gold_ops else (p.aggregation if p is not None else
                                                      getattr(t, "aggregation", "NONE"))
        for k, v in res.items():
            groups[kind][k].append(v)
            groups["ALL"][k].append(v)
        if len(examples) < 5 and not res["chosen"]:
            examples.append({"question": r["question"], "gold": gold, "pred": c.values, "reader": c.reader,
                             "sql": p.sql if p is not None else "", "params": [str(x) for x in p.params] if p else []})

    def summary(g: dict[str, list[bool]]) -> dict[str, Any]:
        out: dict[str, Any] = {"n": len(g["chosen"])}
        for k in ("chosen", "parser", "tapas", "baseline"):
            if k in g:
                out[k] = round(float(np.mean(g[k])), 4) if g[k] else 0.0
        return out

    total = summary(groups.pop("ALL", defaultdict(list)))
    key = "by_aggregation" if gold_ops else "by_predicted_operator"
    out = {"n": total["n"], "accuracy": total.get("chosen", 0.0), "parser_accuracy": total.get("parser"),
           "tapas_accuracy": total.get("tapas"), "baseline_accuracy": total.get("baseline", 0.0),
           key: {k: summary(v) for k, v in sorted(groups.items())}, "chosen_reader": dict(chosen_by),
           "abstained": sum(1 for p in parsed if p is not None and p.abstained), "failures": examples}
    return out


def frame_for(store, table: str) -> pd.DataFrame:
    from kira.tables.parser import table_frame

    return table_frame(store, table)
