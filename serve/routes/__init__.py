"""The HTTP API's routers, one per area; ``kira.serve.app.create_app`` includes them all.

Every handler reads the server's state (config, workspace, snapshot holder, batcher, jobs,
metrics) through :data:`StateDep` instead of closing over ``create_app``'s locals.
"""

from typing import Annotated

from fastapi import Depends, Request

from kira.serve.state import ServerState


def server_state(request: Request) -> ServerState:
    return request.app.state.kira


StateDep = Annotated[ServerState, Depends(server_state)]
