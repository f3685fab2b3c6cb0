"""Numeric parsing, aggregation execution and denotation comparison."""

from __future__ import annotations

import math
from datetime import date, datetime

import pytest

from kira.tables.values import cell_text, denotation_correct, execute_aggregation, parse_number, values_match


@pytest.mark.parametrize("text,value", [
    ("1,234", 1234.0), ("$1,200.50", 1200.5), ("€ 3", 3.0), ("12%", 12.0), ("3.5 kg", 3.5), ("-7", -7.0),
    ("1e3", 1000.0), (" 42 ", 42.0), ("USD 10", 10.0),
])
def test_parse_number_strips_safe_units(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["", "abc", "3 bedrooms", "A4", "1,2,3", "2020-01-01", "12,34", "nan", "inf"])
def test_parse_number_rejects_non_numbers(text):
    assert parse_number(text) is None


def test_execute_aggregation():
    cells = ["$1,000", "2,500", "500"]
    assert execute_aggregation("SUM", cells) == "4000"
    assert execute_aggregation("AVERAGE", cells) == cell_text(4000 / 3)
    assert execute_aggregation("COUNT", cells) == "3"
    assert execute_aggregation("NONE", ["a", "b"]) == "a, b"
    assert execute_aggregation("SUM", ["1", "lots"]) is None  # never a half-numeric sum
    with pytest.raises(ValueError):
        execute_aggregation("MEDIAN", cells)


def test_cell_text_formats():
    assert cell_text(3.0) == "3" and cell_text(2.5) == "2.5" and cell_text(float("nan")) == ""
    assert cell_text(datetime(2020, 1, 2)) == "2020-01-02" and cell_text(date(1999, 5, 6)) == "1999-05-06"
    assert cell_text(None) == "" and cell_text(1234567.25) == "1234567.25"


def test_denotation():
    assert values_match("16.3375", "16.33751") and not values_match("16.3", "16.4")
    assert values_match("New York", "new york.") and not values_match("York", "New York")
    assert denotation_correct(["b", "a"], ["a", "b"])
    assert not denotation_correct(["a"], ["a", "b"]) and not denotation_correct([], ["a"])
    assert denotation_correct(["1,000"], ["1000.0"]) and math.isclose(parse_number("1,000"), 1000)
