"""The default table-QA model: trained once from the packaged real tables, cached, then evaluable."""

from __future__ import annotations

import json

from kira.config import load_config
from kira.tables.defaults import ensure_default_table_model, packaged_table_paths


def test_packaged_tables_are_found():
    names = [name or path for name, path in packaged_table_paths()]
    assert len(names) >= 10 and any("cars" in n for n in names) and any(n == "px_gapminder" for n in names)


def test_default_table_model_trains_once_in_its_own_workspace_then_is_cached(tmp_path):
    from typer.testing import CliRunner

    from kira.cli import app
    from kira.kb.store import DuckDBStore

    cfg = load_config(tmp_path / "ws")
    info = ensure_default_table_model(cfg, max_seconds=20, steps=2, base="tiny-tapas", log=None,
                                      layers=2, views=2, batch_size=4)
    assert info["trained"] and info["summary"]["steps"] == 2
    held = info["summary"]["heldout"]
    assert held["n"] > 0 and 0.0 <= held["accuracy"] <= 1.0 and "baseline_accuracy" in held
    model_dir = cfg.models_dir / "table-qa"
    assert json.loads((model_dir / "kira.json").read_text())["type"] == "table-qa"
    assert not (cfg.models_dir / "table-qa.partial").exists()
    # the training tables stay out of the user's store
    assert not cfg.store_path.exists() or DuckDBStore(cfg.store_path, read_only=True).list_tables() == []
    again = ensure_default_table_model(cfg, base="tiny-tapas", log=None)
    assert again == {"path": str(model_dir), "trained": False}

    # kira eval tables uses the workspace's default model; without one it says what to do
    data_ws = cfg.models_dir / "table-data"
    qfile = tmp_path / "q.jsonl"
    qfile.write_text(json.dumps({"table": "cars", "question": "What is the horsepower of ford torino?",
                                 "answers": ["140"]}) + "\n")
    out = CliRunner().invoke(app, ["eval", "tables", "--questions", str(qfile), "--workspace", str(data_ws),
                                   "--model", str(model_dir), "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["n"] == 1
    out = CliRunner().invoke(app, ["eval", "tables", "--questions", str(qfile), "--workspace", str(data_ws)])
    assert out.exit_code != 0 and "kira tables train" in f"{out.exception} {out.output}"
