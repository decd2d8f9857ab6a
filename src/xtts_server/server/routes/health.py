"""GET /health (alive), GET /ready (model loaded and warm), GET /v1/languages."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from xtts_server.server.deps import State
from xtts_server.server.errors import ShuttingDown, error_response
from xtts_server.server.limits import guard_for
from xtts_server.server.schemas import HealthResponse, LanguagesResponse, ReadyResponse
from xtts_server.text.languages import LANGUAGES

router = APIRouter(tags=["health"])


@router.get("/health", response_model=HealthResponse)
async def health() -> HealthResponse:
    return HealthResponse(status="ok")


@router.get("/ready", response_model=ReadyResponse, responses={503: {"description": "loading or failed"}})
async def ready(state: State) -> ReadyResponse | JSONResponse:
    try:
        if guard_for(state).draining:
            raise ShuttingDown("the server is shutting down")
        tts = state.tts
    except Exception as e:
        return error_response(e, state.settings.retry_after_s)
    return ReadyResponse(
        status="ready",
        device=str(tts.device),
        voices=len(state.voices.list()),
        in_flight=state.synth.in_flight,
    )


@router.get("/v1/languages", response_model=LanguagesResponse)
async def languages() -> LanguagesResponse:
    return LanguagesResponse(languages=[*LANGUAGES, "auto"])
