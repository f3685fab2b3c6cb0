"""Denotation accuracy of table QA, by aggregation type, against a lookup baseline in the same run.

WHY: an accuracy figure means little alone; the single-cell lookup baseline (no aggregation) shows
how much the model's cell selection and aggregation add on the same questions and tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from kira.errors import IngestError
from kira.jsonl import iter_jsonl
from kira.tables.generate import view_frame
from kira.tables.reader import answer_frames, lookup_baseline
from kira.tables.tapas import TableQAModel
from kira.tables.values import denotation_correct


def read_questions(path: str | Path) -> list[dict[str, Any]]:
    """Eval rows ``{"table", "question", "answers"[, "aggregation", "view", "split"]}``, validated."""
    rows = []
    for i, d in iter_jsonl(path):
        for key, typ in (("table", str), ("question", str), ("answers", list)):
            if not isinstance(d.get(key), typ):
                raise IngestError(str(path), i, key, f"missing or not a {typ.__name__}")
        d["answers"] = [str(a) for a in d["answers"]]
        rows.append(d)
    return rows


def question_frames(store, rows: Sequence[dict]) -> list[pd.DataFrame]:
    cache: dict[str, pd.DataFrame] = {}
    known = {t["name"] for t in store.list_tables()}
    frames = []
    for i, r in enumerate(rows):
        if r["table"] not in known:
            raise IngestError("<questions>", i + 1, "table", f"no table {r['table']!r} in the store")
        if r["table"] not in cache:
            cache[r["table"]] = store.get_table(r["table"])
        v = r.get("view") or {}
        frames.append(view_frame(cache[r["table"]], v.get("rows"), v.get("columns")))
    return frames


def evaluate(model: TableQAModel, store, rows: Sequence[dict], batch_size: int = 16) -> dict[str, Any]:
    """``{"n", "accuracy", "baseline_accuracy", "by_aggregation": {type: {n, accuracy, baseline}}}``."""
    frames = question_frames(store, rows)
    preds = answer_frames(model, frames, [r["question"] for r in rows], batch_size=batch_size)
    groups: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    by_template: dict[str, list[tuple[bool, bool]]] = defaultdict(list)
    agg_right = 0
    examples = []
    for r, f, p in zip(rows, frames, preds, strict=True):
        ok = denotation_correct(p.values, r["answers"])
        base_vals, _ = lookup_baseline(f, r["question"])
        base_ok = denotation_correct(base_vals, r["answers"])
        kind = r.get("aggregation") or p.aggregation
        groups[kind].append((ok, base_ok))
        groups["ALL"].append((ok, base_ok))
        if "template" in r:
            by_template[r["template"]].append((ok, base_ok))
        agg_right += int(r.get("aggregation") == p.aggregation)
        if len(examples) < 10:
            examples.append({"question": r["question"], "gold": r["answers"], "pred": p.values,
                             "aggregation": p.aggregation, "baseline": base_vals})

    def summary(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
        n = len(pairs)
        return {"n": n, "accuracy": sum(a for a, _ in pairs) / n if n else 0.0,
                "baseline": sum(b for _, b in pairs) / n if n else 0.0}

    total = summary(groups.pop("ALL", []))
    out = {"n": total["n"], "accuracy": total["accuracy"], "baseline_accuracy": total["baseline"],
           "by_aggregation": {k: summary(v) for k, v in sorted(groups.items())},
           "examples": examples}
    if by_template:
        out["by_template"] = {k: summary(v) for k, v in sorted(by_template.items())}
    if all("aggregation" in r for r in rows) and rows:
        out["aggregation_accuracy"] = agg_right / len(rows)
    return out
