"""Cell values as text and numbers: one place that formats, parses and compares them.

WHY: the model reads cells as text, aggregation needs numbers, evaluation needs tolerant
comparison. Formatting, parsing and comparing live together so the three agree.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

AGGREGATIONS = ("NONE", "SUM", "AVERAGE", "COUNT")  # TAPAS (WTQ) order of the aggregation head

_NUM_RE = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
# Units/currency we strip when what remains is a plain number ("$1,200", "3.5 kg", "12%").
_STRIP_PREFIX = ("$", "€", "£", "¥", "usd", "eur", "gbp")
_UNIT_SUFFIX = re.compile(r"\s*(%|kg|km|g|m|cm|mm|mi|lb|lbs|mph|kmh|km/h|s|sec|min|h|hrs|years?|usd|eur|\$|€|£)$",
                          re.IGNORECASE)


def cell_text(v: Any) -> str:
    """How a cell is shown to the model and to users: integral floats without '.0', dates as ISO."""
    if v is None:
        return ""
    if isinstance(v, float):
        if math.isnan(v):
            return ""
        if v.is_integer() and abs(v) < 1e15:
            return str(int(v))
        return f"{v:.10g}"
    if isinstance(v, datetime):
        return v.date().isoformat() if (v.hour, v.minute, v.second, v.microsecond) == (0, 0, 0, 0) else v.isoformat(" ")
    if isinstance(v, date):
        return v.isoformat()
    try:  # pandas NaT / NA
        import pandas as pd

        if v is pd.NaT or (not isinstance(v, str) and pd.isna(v)):
            return ""
        if isinstance(v, pd.Timestamp):
            return cell_text(v.to_pydatetime())
    except (TypeError, ValueError):
        pass
    return str(v)


def parse_number(text: str) -> float | None:
    """A number from a cell's text, or None. Strips thousands commas, currency and simple units
    only when what remains is a plain number (so '3 bedrooms' or 'A4' stay non-numeric)."""
    s = str(text).strip().lower()
    if not s:
        return None
    for p in _STRIP_PREFIX:
        if s.startswith(p):
            s = s[len(p):].strip()
            break
    s = _UNIT_SUFFIX.sub("", s).strip()
    if re.fullmatch(r"[-+]?\d{1,3}(,\d{3})+(\.\d*)?", s):
        s = s.replace(",", "")
    if not _NUM_RE.match(s):
        return None
    try:
        x = float(s)
    except ValueError:
        return None
    return x if math.isfinite(x) else None


def execute_aggregation(aggregation: str, values: Sequence[str]) -> str | None:
    """Run an aggregation over selected cell texts; None when it cannot be computed safely.

    NONE returns the cells joined; COUNT counts cells; SUM/AVERAGE need every cell numeric
    (a half-numeric sum would be a silent wrong answer)."""
    aggregation = aggregation.upper()
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"unknown aggregation {aggregation!r}; known: {AGGREGATIONS}")
    if aggregation == "NONE":
        return ", ".join(values) if values else None
    if aggregation == "COUNT":
        return str(len(values))
    nums = [parse_number(v) for v in values]
    if not nums or any(n is None for n in nums):
        return None
    total = math.fsum(nums)  # type: ignore[arg-type]
    result = total if aggregation == "SUM" else total / len(nums)
    return cell_text(float(result))


def normalize_text(s: str) -> str:
    s = str(s).lower().strip()
    s = re.sub(r"[\s_]+", " ", s)
    return re.sub(r"[^\w .:-]", "", s).strip(" .")


def values_match(pred: str, gold: str, rel_tol: float = 1e-4, abs_tol: float = 1e-6) -> bool:
    """Denotation equality of one value: numbers within tolerance, strings normalised."""
    p, g = parse_number(pred), parse_number(gold)
    if p is not None and g is not None:
        return math.isclose(p, g, rel_tol=rel_tol, abs_tol=abs_tol)
    return normalize_text(pred) == normalize_text(gold)


def denotation_correct(pred: Sequence[str], gold: Sequence[str]) -> bool:
    """Order-insensitive multiset match of predicted and gold values (WTQ denotation accuracy)."""
    if len(pred) != len(gold):
        return False
    left = list(gold)
    for p in pred:
        for i, g in enumerate(left):
            if values_match(p, g):
                del left[i]
                break
        else:
            return False
    return True
