"""The ``kira`` command line: one group per area, each also runnable as ``python -m kira.<area>``.

Areas register their own Typer apps (``kira/<area>/cli.py``); this file only composes them, so
importing it stays cheap (heavy imports happen inside commands).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Annotated

import typer

from kira.clikit import WorkspaceOpt
from kira.errors import KiraError

app = typer.Typer(help="kira: Knowledge-Injected Retrieval-Augmented QA.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
eval_app = typer.Typer(help="Evaluate retrieval, QA and table QA.", no_args_is_help=True)

# (group name, module, attribute, help)
GROUPS = [
    ("index", "kira.index_build.cli", "app", "Build, inspect, update and compact versioned indexes."),
    ("retriever", "kira.retriever.cli", "app", "Search and train DPR retrievers."),
    ("reader", "kira.reader.cli", "app", "Train and inspect readers."),
    ("kb", "kira.kb.cli", "app", "Plug in, remove and embed knowledge bases."),
    ("tables", "kira.tables.cli", "app", "Ingest tables and train table QA."),
    ("graph", "kira.graph.cli", "app", "Graph views and graph PLMs over KBs."),
    ("serve", "kira.serve.cli", "app", "Run the HTTP API."),
]
EVALS = [
    ("retrieval", "kira.retriever.cli", "eval_retrieval"),
    ("qa", "kira.reader.cli", "eval_qa"),
    ("tables", "kira.tables.cli", "eval_tables"),
    ("kb", "kira.kb.cli", "eval_kb"),
]



def _attr(module: str, attr: str):
    """An area's CLI object, or None while that area has none (a broken import still raises)."""
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            return None
        raise
    return getattr(mod, attr, None)


for name, module, attr, help_ in GROUPS:
    sub = _attr(module, attr)
    if sub is not None:
        app.add_typer(sub, name=name, help=help_)
for name, module, attr in EVALS:
    fn = _attr(module, attr)
    if fn is not None:
        eval_app.command(name)(fn)
app.add_typer(eval_app, name="eval")


@app.command()
def ask(
    question: Annotated[str, typer.Argument(help="The question.")],
    workspace: WorkspaceOpt = None,
    k: Annotated[int, typer.Option(help="Passages retrieved for the reader.")] = 10,
    sources: Annotated[str, typer.Option(help="text | kb | tables | all")] = "all",
    reader: Annotated[str, typer.Option(help="extractive | fid")] = "extractive",
    method: Annotated[str | None, typer.Option(help="bm25 | dense | hybrid (default from config)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Answer a question from the workspace's current index, with its evidence."""
    from kira.config import load_config
    from kira.pipeline import QAPipeline

    pipe = QAPipeline.from_config(load_config(workspace))
    result = pipe.ask(question, k=k, sources=sources, reader=reader, method=method)
    if as_json:
        print(json.dumps(result.to_dict(), default=str))
        return
    from kira.pipeline import render_result

    render_result(result)


models_app = typer.Typer(help="Trained artifacts under models/: types, formats, staleness.", no_args_is_help=True)
workspace_app = typer.Typer(help="Workspace maintenance.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(workspace_app, name="workspace")


@models_app.command("list")
def models_list(workspace: WorkspaceOpt = None,
                as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Every trained artifact with its type and format; STALE when a source it learned from changed."""
    from kira.artifacts import list_artifacts
    from kira.clikit import run
    from kira.workspace import opened

    def body():
        with opened(workspace) as (cfg, store):
            return list_artifacts(cfg.models_dir, store.list_sources())

    rows = run(body)
    if as_json:
        print(json.dumps(rows, default=str))
        return
    for r in rows:
        flag = f"  STALE: {', '.join(r['stale'])} changed since training" if r.get("stale") else ""
        print(f"{r['name']:<24} {r.get('type') or '?':<20} format {r.get('format_version', '?')}  "
              f"{r.get('created_at') or ''}{flag}{('  ' + r['error']) if r.get('error') else ''}")


@workspace_app.command("upgrade")
def workspace_upgrade(workspace: WorkspaceOpt = None) -> None:
    """Bring a workspace written by an older kira up to date: the current index version gets the
    store snapshot readers need (when the store still holds exactly its passages), the store its
    format record."""
    from kira.clikit import run
    from kira.workspace import upgrade

    print(run(lambda: upgrade(workspace)))


@app.command()
def init(workspace: WorkspaceOpt = None) -> None:
    """Create a workspace with a commented kira.toml holding the defaults."""
    from kira.config import KiraConfig, workspace_path

    ws = workspace_path(workspace)
    ws.mkdir(parents=True, exist_ok=True)
    toml = ws / "kira.toml"
    if not toml.exists():
        cfg = KiraConfig(workspace=ws)
        lines = ["# kira workspace config; every key shown with its default.", ""]
        for section in ("index", "ingest", "retriever", "reader", "serve"):
            lines.append(f"[{section}]")
            for key, val in getattr(cfg, section).model_dump().items():
                if val is None:
                    lines.append(f"# {key} =")
                else:
                    lines.append(f"# {key} = {json.dumps(val)}")
            lines.append("")
        toml.write_text("\n".join(lines))
    print(ws)


def main() -> None:
    try:
        app()
    except KiraError as e:
        print(f"kira: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
