"""WebSocket /v1/tts/ws: speak text while it is still being written (an LLM's tokens).

The client configures once, then sends text fragments per `context_id`; each context splits its
text into sentences as they become certain and synthesizes them one at a time, in order. Audio goes
back as a JSON `chunk` event followed by exactly one binary frame. docs/http-api.md has the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ConfigDict, Field, ValidationError

from xtts_server.audio.formats import AudioFormat, StreamEncoder, parse_format
from xtts_server.errors import InvalidRequest, XTTSError
from xtts_server.server import limits, metrics
from xtts_server.server.auth import websocket_caller
from xtts_server.server.errors import PayloadTooLarge, classify, public_message
from xtts_server.server.schemas import GenerationFields
from xtts_server.server.state import ServerState, SpeakRequest
from xtts_server.text.languages import normalize_language
from xtts_server.text.split import IncrementalSplitter

logger = logging.getLogger(__name__)

router = APIRouter()

MAX_QUEUED_SENTENCES = 64  # per context: beyond this the client writes faster than we can speak
_CLOSE = object()  # queue marker: the context's text has ended


class WSConfig(GenerationFields):
    model_config = ConfigDict(extra="forbid")

    type: str = "config"
    voice: str | None = None
    language: str = "en"
    format: str = "pcm"
    sample_rate: int | None = None
    stream_chunk_size: int = Field(default=20, ge=1, le=200)


class _Gone(Exception):
    """The client went away while we were sending."""


class _Session:
    def __init__(self, websocket: WebSocket, state: ServerState) -> None:
        self.ws = websocket
        self.state = state
        self.config: WSConfig | None = None
        self.format: AudioFormat | None = None
        self.contexts: dict[str, _Context] = {}
        self.send_lock = asyncio.Lock()  # a chunk event and its binary frame stay adjacent
        self.gone = False

    async def send_json(self, event: dict[str, Any]) -> None:
        async with self.send_lock:
            await self._send(self.ws.send_text(json.dumps(event)))

    async def send_audio(self, event: dict[str, Any], data: bytes) -> None:
        async with self.send_lock:
            await self._send(self.ws.send_text(json.dumps(event)))
            await self._send(self.ws.send_bytes(data))  # awaiting it is the backpressure

    async def _send(self, sending: Any) -> None:
        if self.gone:
            sending.close()
            raise _Gone
        try:
            await sending
        except Exception as e:  # disconnect, closed transport
            self.gone = True
            raise _Gone from e

    async def error(self, error: BaseException, context_id: str | None = None) -> None:
        _status, code = classify(error)
        message = public_message(error)
        metrics.count_error(code)
        if code == "internal_error":
            logger.error("websocket synthesis failed: %s", error, exc_info=error)
        event: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if context_id is not None:
            event["context_id"] = context_id
        await self.send_json(event)

    # --- messages ---------------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            context_id: str | None = None
            try:
                if text is None:
                    raise InvalidRequest("binary frames are not accepted: send JSON text messages")
                try:
                    data = json.loads(text)
                except json.JSONDecodeError as e:
                    raise InvalidRequest(f"message is not valid JSON: {e}") from None
                except RecursionError:  # hostile nesting ([[[[...): refused, the socket stays
                    raise InvalidRequest("message is JSON nested too deeply") from None
                if not isinstance(data, dict):
                    raise InvalidRequest("a message must be a JSON object with a 'type'")
                cid = data.get("context_id")
                context_id = cid if isinstance(cid, str) else None
                await self.handle(data)
            except XTTSError as e:
                await self.error(e, context_id)

    async def handle(self, data: dict[str, Any]) -> None:
        kind = data.get("type")
        if kind == "config":
            self.configure(data)
            await self.send_json({"type": "ready"})
            return
        if kind not in ("text", "flush", "close", "cancel"):
            raise InvalidRequest(f"unknown message type {kind!r}; use config, text, flush, close or cancel")
        cid = data.get("context_id")
        if not isinstance(cid, str) or not cid:
            raise InvalidRequest(f"a {kind!r} message needs a context_id (a non-empty string)")
        if self.config is None:
            raise InvalidRequest("send a config message first")
        ctx = self.contexts.get(cid)
        if kind == "text":
            fragment = data.get("text")
            if not isinstance(fragment, str):
                raise InvalidRequest("a text message needs 'text' (a string)")
            if ctx is None:
                ctx = self.contexts[cid] = _Context(self, cid)
            ctx.push(fragment)
        elif kind == "flush":
            if ctx is not None:
                ctx.flush()
        elif kind == "close":
            if ctx is None:
                await self.send_json({"type": "done", "context_id": cid})
            else:
                ctx.close()
        else:
            if ctx is not None:
                await ctx.cancel()
            await self.send_json({"type": "cancelled", "context_id": cid})

    def configure(self, data: dict[str, Any]) -> None:
        try:
            config = WSConfig.model_validate(data)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in e.errors()
            )
            raise InvalidRequest(f"bad config: {problems}") from None
        fmt = parse_format(config.format, config.sample_rate)
        if config.language != "auto":
            normalize_language(config.language)
        self.state.voice(config.voice)  # unknown voice or model not ready: say so now
        self.config, self.format = config, fmt

    async def shutdown(self) -> None:
        for ctx in list(self.contexts.values()):
            await ctx.cancel()


class _Context:
    """One context_id: its splitter, its queue of sentences, the task that speaks them."""

    def __init__(self, session: _Session, context_id: str) -> None:
        assert session.config is not None and session.format is not None
        self.session = session
        self.id = context_id
        self.config = session.config
        self.format = session.format
        language = "en" if self.config.language == "auto" else self.config.language
        self.splitter = IncrementalSplitter(language)
        self.queue: asyncio.Queue[object] = asyncio.Queue()
        self.queued_chars = 0
        self.closing = False
        self.sending = False
        self.cancelled = False
        self.encoder: StreamEncoder | None = None
        self.task = asyncio.create_task(self.speak_all())

    def _check_room(self, extra: int) -> None:
        limit = self.session.state.settings.max_text_chars
        pending = len(self.splitter.pending) + self.queued_chars + extra
        if pending > limit:
            raise PayloadTooLarge(
                f"context {self.id!r} has {pending} characters waiting; at most {limit} may wait"
                " (send text no faster than it is spoken)"
            )
        if self.queue.qsize() >= MAX_QUEUED_SENTENCES:
            raise PayloadTooLarge(
                f"context {self.id!r} has {self.queue.qsize()} sentences waiting;"
                f" at most {MAX_QUEUED_SENTENCES} may wait"
            )

    def _enqueue(self, sentences: list[str]) -> None:
        for sentence in sentences:
            if sentence.strip():
                self.queued_chars += len(sentence)
                self.queue.put_nowait(sentence)

    def push(self, fragment: str) -> None:
        if self.closing:
            raise InvalidRequest(f"context {self.id!r} is closing: use a new context_id")
        self._check_room(len(fragment))
        self._enqueue(self.splitter.push(fragment))

    def flush(self) -> None:
        if not self.closing:
            self._enqueue(self.splitter.flush())

    def close(self) -> None:
        if not self.closing:
            self.flush()
            self.closing = True
            self.queue.put_nowait(_CLOSE)

    async def cancel(self) -> None:
        """Stop the generation (its iterator is closed) and drop what is queued."""
        self.cancelled = True
        if not self.sending:  # a chunk event and its frame are never split: stop after the pair
            self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.task
        self._forget()

    def _forget(self) -> None:
        if self.session.contexts.get(self.id) is self:
            del self.session.contexts[self.id]
        if self.encoder is not None:
            self.encoder.close()

    async def speak_all(self) -> None:
        session = self.session
        index = 0
        try:
            while True:
                item = await self.queue.get()
                if item is _CLOSE:
                    tail = self.encoder.finish() if self.encoder is not None else b""
                    if tail:
                        await self._send_chunk(max(index - 1, 0), "", tail)
                    await session.send_json({"type": "done", "context_id": self.id})
                    self._forget()
                    return
                assert isinstance(item, str)
                self.queued_chars -= len(item)
                await session.send_json({"type": "started", "context_id": self.id, "text": item})
                try:
                    await self._speak(index, item)
                except _Gone:
                    raise
                except Exception as e:  # this sentence failed (reported, a bug logged); the context goes on
                    await session.error(e, self.id)
                if self.cancelled:
                    return
                index += 1
        except _Gone:
            return

    async def _speak(self, index: int, sentence: str) -> None:
        c = self.config
        req = SpeakRequest(sentence, c.language, c.voice, c.options(), c.stream_chunk_size)
        state = self.session.state
        # limits, metrics, then state.speak; a sentence is bounded like an HTTP request
        first, rest = await limits.speak(state, req, deadline_s=state.settings.request_timeout_s)
        try:
            if self.encoder is None:
                self.encoder = StreamEncoder(self.format, first.sample_rate)
            chunk = first
            while True:
                data = self.encoder.encode(chunk.audio)
                if data:
                    await self._send_chunk(index, sentence, data)
                if self.cancelled:
                    return
                try:
                    chunk = await rest.__anext__()
                except StopAsyncIteration:
                    return
        finally:
            await rest.aclose()  # a cancel or a disconnect stops the generation here

    async def _send_chunk(self, index: int, sentence: str, data: bytes) -> None:
        event = {
            "type": "chunk",
            "context_id": self.id,
            "sentence": index,
            "text": sentence,
            "bytes": len(data),
        }
        self.sending = True
        try:
            await self.session.send_audio(event, data)
        finally:
            self.sending = False


@router.websocket("/v1/tts/ws")
async def tts_ws(websocket: WebSocket) -> None:
    """Incremental text in, audio out; see docs/http-api.md, "WebSocket"."""
    state: ServerState = websocket.app.state.server
    await websocket.accept()
    if await websocket_caller(websocket) is None:  # with keys and no Authorization header
        return
    session = _Session(websocket, state)
    try:
        await session.run()
    except _Gone:
        pass
    finally:
        session.gone = True
        await session.shutdown()
