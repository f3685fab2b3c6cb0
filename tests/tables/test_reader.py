"""TableReader over store tables, the lookup baseline, evaluation and the eval/train CLI (tiny-tapas)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from kira.schema import Evidence, Reader
from kira.tables.evaluate import evaluate, read_questions
from kira.tables.generate import generate_from_store, write_questions
from kira.tables.ingest import add_table
from kira.tables.reader import TableReader, lookup_baseline
from kira.tables.tapas import Prediction, TableQAModel

SALES = pd.DataFrame({"Region": [f"region{i}" for i in range(20)],
                      "Revenue": [f"${1000 + 10 * i:,}" for i in range(20)],
                      "Units": list(range(20))})


@pytest.fixture(scope="module")
def tiny():
    return TableQAModel.load("tiny-tapas", max_length=96, snapshot_rows=4, device="cpu")


class FixedCells(TableQAModel):
    """The real TAPAS path up to the heads, with the selection fixed: isolates what the reader does
    with a selection (snapshot → original rows, aggregation execution) from model quality."""

    def __init__(self, base: TableQAModel, pick, aggregation: str):
        super().__init__(base.tokenizer, base.model, base.max_length, base.snapshot_rows, device="cpu")
        self.pick, self.aggregation, self.seen = pick, aggregation, []

    def predict(self, tables, questions, batch_size=16, threshold=0.5):
        real = super().predict(tables, questions, batch_size, threshold)
        self.seen += list(tables)
        return [Prediction(self.pick(t), self.aggregation, r.aggregation_probs, {c: 1.0 for c in self.pick(t)})
                for t, r in zip(tables, real, strict=True)]


def test_reader_executes_aggregation_over_snapshot_rows(store, tiny):
    add_table(store, SALES, name="sales", caption="regional sales")
    # select the revenue cells of the snapshot rows whose region is named in the question
    pick = lambda t: [(r, 1) for r in range(len(t)) if t.iat[r, 0] in ("region7", "region12")]  # noqa: E731
    model = FixedCells(tiny, pick, "SUM")
    reader = TableReader(model, store)
    assert isinstance(reader, Reader) and reader.name == "tapas"
    ev = Evidence(id="sales:1", title="regional sales", text="...", score=3.0, kind="table", source="sales",
                  retriever="bm25", metadata={"table": "sales", "rows": [5, 14]})
    (ans,) = reader.read("total revenue of region7 and region12?", [ev])
    assert len(model.seen[0]) == 4  # the 20-row table went through a 4-row content snapshot
    assert ans.text == str(1070 + 1120) and ans.aggregation == "SUM"
    assert ans.cells == [(7, 1), (12, 1)]  # coordinates in the original table, not the snapshot
    assert ans.evidence[0].metadata["cells"] == [[7, 1], [12, 1]] and ans.evidence[0].kind == "table"
    assert ans.evidence[0].metadata["rows"] == [7, 12] and ans.reader == "tapas"
    avg = TableReader(FixedCells(tiny, pick, "AVERAGE"), store).read_table("avg revenue region7 region12", "sales")
    assert avg.text == "1095"
    assert reader.read("x", [Evidence(id="p", title="t", text="t", score=1.0)]) == []


def test_real_model_answers_are_well_formed(store, tiny):
    add_table(store, SALES, name="sales")
    (a,) = TableReader(tiny, store).read("how many units in region3?", [
        Evidence(id="sales:0", title="s", text="s", score=1.0, kind="table", metadata={"table": "sales"})])
    assert a.aggregation in ("NONE", "SUM", "AVERAGE", "COUNT")
    assert all(0 <= r < 20 and 0 <= c < 3 for r, c in (a.cells or []))
    assert a.no_answer == (a.text == "")


def test_lookup_baseline():
    frame = SALES.rename(columns=str.lower)
    vals, cell = lookup_baseline(frame, "What are the units of region13?")
    assert vals == ["13"] and cell == (13, 2)


def test_evaluate_and_cli(tmp_path, workspace, tiny):
    from kira.config import load_config
    from kira.kb.store import DuckDBStore
    from kira.tables.cli import app, eval_tables

    cfg = load_config(workspace)
    with DuckDBStore(cfg.store_path) as store:
        add_table(store, SALES, name="sales")
        add_table(store, SALES.assign(Units=SALES["Units"] * 3), name="sales_b")
        qs = generate_from_store(store, heldout=["sales_b"], n_views=3, max_rows=4, max_columns=3)
        out = tmp_path / "q.jsonl"
        write_questions(qs, out)
        rows = read_questions(out)
        res = evaluate(tiny, store, rows)
    assert res["n"] == len(rows) and 0 <= res["accuracy"] <= 1 and 0 <= res["baseline_accuracy"] <= 1
    assert set(res["by_aggregation"]) <= {"NONE", "SUM", "AVERAGE", "COUNT"}
    assert sum(v["n"] for v in res["by_aggregation"].values()) == res["n"]
    # the baseline is measured on the same questions and answers plain lookups on these tables
    assert res["by_template"]["lookup"]["baseline"] > 0

    model_dir = tmp_path / "tq"
    tiny.save(model_dir)
    ev = typer.Typer()
    ev.command()(eval_tables)
    r = CliRunner().invoke(ev, ["--questions", str(out), "--model", str(model_dir), "--split", "test", "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["n"] == sum(1 for x in rows if x["split"] == "test") and "by_aggregation" in got

    r = CliRunner().invoke(app, ["train", "--base", "tiny-tapas", "--steps", "2", "--views", "2", "--max-rows", "4",
                                 "--max-length", "96", "--out", str(tmp_path / "trained"), "--json"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and (tmp_path / "trained" / "kira.json").exists()
    assert summary["heldout"]["n"] > 0

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"table": "sales", "question": "q"}\n')
    from kira.errors import IngestError

    with pytest.raises(IngestError) as e:
        read_questions(bad)
    assert e.value.line == 1 and e.value.field == "answers"
