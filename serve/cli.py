"""``kira serve``: run the HTTP API over a workspace (imports stay light until a command runs)."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(help="Run the HTTP API.", no_args_is_help=True, pretty_exceptions_enable=False)


@app.command("run")
def run(
    workspace: Annotated[str | None, typer.Option("--workspace", "-w", envvar="KIRA_WORKSPACE",
                                                  help="Workspace directory (default ./workspace).")] = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default serve.host, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default serve.port, 8000).")] = None,
    max_batch: Annotated[int | None, typer.Option(help="Micro-batch size (1 = one question at a time).")] = None,
    max_wait_ms: Annotated[float | None, typer.Option(help="Quiet gap that closes a micro-batch (at most 10 gaps).")] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve /v1/ask, /v1/search, KB and admin endpoints, /metrics and the web page at /."""
    import uvicorn

    from kira.config import load_config
    from kira.serve.app import create_app

    cfg = load_config(workspace)
    if host:
        cfg.serve.host = host
    if port:
        cfg.serve.port = port
    if max_batch:
        cfg.serve.max_batch = max_batch
    if max_wait_ms is not None:
        cfg.serve.max_wait_ms = max_wait_ms
    # Start the JVM (Lucene) now, before uvicorn installs its signal handlers: a JVM started later
    # takes over SIGTERM/SIGINT, runs its own shutdown and leaves Lucene calls hanging forever.
    from kira.jvm import import_pyserini

    import_pyserini()
    for line in stale_model_lines(cfg):
        typer.echo(line, err=True)
    typer.echo(f"kira serving {cfg.workspace} on http://{cfg.serve.host}:{cfg.serve.port} "
               f"(docs at /docs, page at /)", err=True)
    uvicorn.run(create_app(cfg), host=cfg.serve.host, port=cfg.serve.port, log_level=log_level,
                timeout_keep_alive=30)


def stale_model_lines(cfg) -> list[str]:
    """One warning line per trained artifact whose sources changed since it was trained (as the
    current index version's snapshot sees them)."""
    from kira.artifacts import list_artifacts
    from kira.errors import KiraError
    from kira.index_build.versions import current_version
    from kira.workspace import open_snapshot

    try:
        snap = open_snapshot(current_version(cfg.indexes_dir))
    except KiraError:
        return []
    if snap is None:
        return []
    with snap:
        rows = list_artifacts(cfg.models_dir, snap.list_sources())
    return [f"kira: warning: model {r['name']} is stale: {', '.join(r['stale'])} changed since it was trained"
            for r in rows if r.get("stale")]


@app.command("openapi")
def openapi(workspace: Annotated[str | None, typer.Option("--workspace", "-w", envvar="KIRA_WORKSPACE")] = None,
            ) -> None:
    """Print the OpenAPI spec (JSON) without starting a server."""
    import json

    from kira.config import load_config
    from kira.serve.app import create_app

    print(json.dumps(create_app(load_config(workspace), watch=False).openapi(), indent=2))
