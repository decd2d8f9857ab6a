"""API keys: who may use the server, checked before anything reads the request.

Keys come from `--api-key-file` (one a line; blank lines and `#` comments skipped) and from
`XTTS_API_KEYS` (comma-separated). With keys, every route but /health and /ready needs
`Authorization: Bearer <key>`; the WebSocket takes the same header or, as its first message,
`{"type": "auth", "api_key": "<key>"}` (browsers cannot set headers on a WebSocket).

Keys are never logged: a caller is known by a key id, the first 8 hex digits of the key's SHA-256.
Comparisons are constant-time over digests, so neither a key's content nor its length leaks.

Without keys the server is open. It must be asked for (`--no-auth`) to listen on anything but a
loopback address; `check_exposure` refuses to start otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import ipaddress
import json
import logging
from contextvars import ContextVar
from pathlib import Path

from fastapi import WebSocket
from starlette.types import ASGIApp, Receive, Scope, Send

from xtts_server.errors import XTTSError
from xtts_server.server.errors import error_body
from xtts_server.server.settings import Settings

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/health", "/ready"})
ANONYMOUS = "anonymous"
WS_AUTH_TIMEOUT_S = 10.0  # a WebSocket without the header must authenticate this soon
WS_POLICY_VIOLATION = 1008

caller_var: ContextVar[str] = ContextVar("xtts_caller", default=ANONYMOUS)


class InsecureConfig(XTTSError):
    """The server would be open to a network without anyone having asked for that."""


def key_id(key: str) -> str:
    return "key-" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def load_keys(settings: Settings) -> tuple[str, ...]:
    """Every configured key, in order, without duplicates."""
    keys = [secret.get_secret_value().strip() for secret in settings.api_keys]
    if settings.api_key_file is not None:
        path = settings.api_key_file
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InsecureConfig(f"cannot read the API key file {str(path)!r}: {exc}") from exc
        from_file = [line.strip() for line in text.splitlines()]
        from_file = [k for k in from_file if k and not k.startswith("#")]
        if not from_file:
            raise InsecureConfig(f"the API key file {str(path)!r} holds no key (one a line)")
        keys += from_file
    for key in keys:
        if any(c.isspace() or not c.isprintable() for c in key):
            raise InsecureConfig(
                f"API key {key_id(key)} has spaces or control characters; keys are one token"
            )
        if len(key) < 16:
            logger.warning(
                "API key %s is only %d characters; use 32 or more random ones", key_id(key), len(key)
            )
    return tuple(dict.fromkeys(k for k in keys if k))


def is_loopback(host: str) -> bool:
    if host.strip("[]").lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name: it may resolve to anything


def check_exposure(settings: Settings, keys: tuple[str, ...]) -> None:
    """Refuse an open server on a network address unless --no-auth asked for one; warn when open."""
    if keys:
        if settings.no_auth:
            raise InsecureConfig("--no-auth and API keys together: choose one")
        logger.info("API keys required (%d keys: %s)", len(keys), ", ".join(key_id(k) for k in keys))
        return
    if settings.no_auth:
        logger.warning(
            "--no-auth: anyone who can reach %s:%d may synthesize, clone and delete voices",
            settings.host,
            settings.port,
        )
        return
    if not is_loopback(settings.host):
        raise InsecureConfig(
            f"refusing to listen on {settings.host} without API keys: set --api-key-file FILE or "
            "XTTS_API_KEYS, or pass --no-auth to serve an open server on purpose"
        )
    logger.warning("no API keys: anyone on this machine may use the server (loopback only)")


class KeyRing:
    """The accepted keys, as digests; `identify` says whose a presented key is."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._digests = [(hashlib.sha256(k.encode()).digest(), key_id(k)) for k in keys]

    def identify(self, presented: str | None) -> str | None:
        if not presented:
            return None
        digest = hashlib.sha256(presented.encode("utf-8", "surrogatepass")).digest()
        found = None
        for known, kid in self._digests:  # no early exit: the time does not tell which matched
            if hmac.compare_digest(digest, known):
                found = kid
        return found


def bearer(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header ('' for another scheme or none)."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


class AuthMiddleware:
    """401 for every HTTP request without a known key, except OPEN_PATHS. WebSockets with a wrong
    key are refused at the handshake; without the header, the route asks for an auth message."""

    def __init__(self, app: ASGIApp, *, keyring: KeyRing | None) -> None:
        self.app = app
        self.keyring = keyring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        if self.keyring is None:
            state["caller"] = ANONYMOUS
            await self.app(scope, receive, send)
            return
        token = bearer(scope)
        caller = self.keyring.identify(token)
        if scope["type"] == "websocket":
            if token is not None and caller is None:
                logger.warning("websocket refused: %s API key", "no" if not token else "unknown")
                await send({"type": "websocket.close", "code": WS_POLICY_VIOLATION})
                return
            state["caller"] = caller  # None: the route waits for an auth message
            if caller is not None:
                caller_var.set(caller)
            await self.app(scope, receive, send)
            return
        if caller is None and scope.get("path") not in OPEN_PATHS:
            await _unauthorized(send, "a missing" if not token else "an unknown")
            return
        state["caller"] = caller or ANONYMOUS
        if caller is not None:
            caller_var.set(caller)
        await self.app(scope, receive, send)


async def _unauthorized(send: Send, what: str) -> None:
    message = f"{what} API key: send 'Authorization: Bearer <key>'"
    body = json.dumps(error_body("unauthorized", message)).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"www-authenticate", b'Bearer realm="xtts-server"'),
        (b"content-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 401, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def websocket_caller(websocket: WebSocket) -> str | None:
    """After accept: the caller of an authenticated WebSocket; with keys and no header, the first
    message must be {"type": "auth", "api_key": ...}. None (and the socket closed) when it is not."""
    state = websocket.scope.get("state", {})
    if "caller" not in state or state["caller"] == ANONYMOUS:
        return ANONYMOUS
    if state["caller"] is not None:
        return str(state["caller"])
    keyring: KeyRing | None = websocket.app.state.keyring
    assert keyring is not None
    caller = None
    problem = "send {'type': 'auth', 'api_key': '<key>'} first (or the Authorization header)"
    try:
        message = await asyncio.wait_for(websocket.receive(), WS_AUTH_TIMEOUT_S)
    except asyncio.TimeoutError:
        message = None
        problem = f"no auth message within {WS_AUTH_TIMEOUT_S:.0f} s"
    if message is not None and message["type"] == "websocket.disconnect":
        return None
    text = message.get("text") if message else None
    if isinstance(text, str):
        with contextlib.suppress(ValueError):
            data = json.loads(text)
            if isinstance(data, dict) and data.get("type") == "auth" and isinstance(data.get("api_key"), str):
                caller = keyring.identify(data["api_key"])
                if caller is None:
                    problem = "unknown API key"
    if caller is None:
        logger.warning("websocket refused: %s", problem)
        with contextlib.suppress(Exception):
            await websocket.send_text(
                json.dumps({"type": "error", **error_body("unauthorized", problem)["error"]})
            )
            await websocket.close(WS_POLICY_VIOLATION)
        return None
    caller_var.set(caller)
    return caller
