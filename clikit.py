"""Options every area's command line shares, defined once so each spelling has one meaning.

WHY: ``--workspace`` and ``--json`` were defined in six CLIs; a shared option that drifts in one
of them is a bug a user meets as an inconsistency.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from kira.errors import KiraError

WorkspaceOpt = Annotated[str | None, typer.Option("--workspace", "-w", envvar="KIRA_WORKSPACE",
                                                  help="Workspace directory (default ./workspace).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
INDEX_HELP = ("A workspace, its indexes/ directory or one index version directory: commands that read use "
              "that version (default: the current one); commands that write use the workspace it belongs to.")
IndexOpt = Annotated[str | None, typer.Option("--index", "-i", help=INDEX_HELP)]
ReplaceOpt = Annotated[bool, typer.Option(
    "--replace", help="Replace an existing source of the same kind and name that was read from other files.")]


def workspace_for(index: str | None, workspace: str | None = None) -> Path | None:
    """The workspace an ``--index`` path belongs to (a version directory, ``indexes/`` or the
    workspace itself): the one meaning of ``--index`` in every command line."""
    if index is None:
        return Path(workspace).resolve() if workspace else None
    p = Path(index).resolve()
    for cand in (p, *p.parents):
        if (cand / "manifest.json").exists():  # an index version: it holds a store snapshot, not the store
            continue
        if (cand / "indexes").is_dir() or (cand / "kira.toml").exists() or (cand / "store.duckdb").exists():
            return cand
    return p if not workspace else Path(workspace).resolve()


def deprecated_alias(command: Callable[..., Any], old: str, new: str) -> Callable[..., Any]:
    """``command`` under its old spelling: the same options, plus one line on stderr naming the new one."""
    import functools

    @functools.wraps(command)
    def alias(*args: Any, **kwargs: Any) -> Any:
        print(f"kira: `{old}` is now `{new}`; the old name will be removed", file=sys.stderr)
        return command(*args, **kwargs)

    return alias


def fail(message: str) -> NoReturn:
    """A user error: one line on stderr, exit code 2."""
    print(f"kira: error: {message}", file=sys.stderr)
    raise typer.Exit(2)


@contextlib.contextmanager
def quiet_stdout(enabled: bool) -> Iterator[None]:
    """Route fd 1 to stderr (Java logs to stdout) so ``--json`` output stays one clean object."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run(body: Callable[[], Any], *, json_output: bool = False) -> Any:
    """Run a command body: a ``KiraError`` (bad input, missing artifact, busy workspace) becomes
    one line and exit code 2; anything else is a bug and raises with its traceback."""
    try:
        with quiet_stdout(json_output):
            return body()
    except KiraError as e:
        fail(str(e))
