"""Request dependencies, as Annotated aliases for the routes."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from xtts_server.server.state import ServerState


async def get_state(request: Request) -> ServerState:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hop per request.
    state: ServerState = request.app.state.server
    return state


State = Annotated[ServerState, Depends(get_state)]
