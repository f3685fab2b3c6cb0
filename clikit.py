"""Options every area's command line shares, defined once so each spelling has one meaning.

WHY: ``--workspace`` and ``--json`` were defined in six CLIs; a shared option that drifts in one
of them is a bug a user meets as an inconsistency.
"""

from __future__ import annotations

from typing import Annotated

import typer

WorkspaceOpt = Annotated[str | None, typer.Option("--workspace", "-w", envvar="KIRA_WORKSPACE",
                                                  help="Workspace directory (default ./workspace).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ReplaceOpt = Annotated[bool, typer.Option(
    "--replace", help="Replace an existing source of the same kind and name that was read from other files.")]
