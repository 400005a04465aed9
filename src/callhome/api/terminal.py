"""WebSocket routes for terminals, commands and TCP forwards; the audit log.

``/v1/devices/{name}/terminal?term=xterm&cols=80&rows=24``, ``/v1/devices/{name}/exec?command=``
and ``/v1/devices/{name}/forward?port=22[&host=127.0.0.1]`` need a token with the ``terminal``
right. Whatever goes wrong before the bridge starts (bad token, device away, the device
refusing) is answered as a plain HTTP error with the usual JSON body, instead of the
WebSocket handshake (on a server without the denial extension, a close with code 4000 +
the HTTP status and the message as reason). A refusal to a token (no right, device away,
device refusing) is audited as ``refused terminal`` (``exec``, ``forward``); a request
without a valid token is not (it names nobody). The message protocol after the handshake
is described in callhome.manager.terminal.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketState

from callhome.api import errors
from callhome.api.auth import Forbidden, TokenSet
from callhome.api.errors import ANSWERED
from callhome.errors import AuthError
from callhome.manager.service import Manager
from callhome.manager.terminal import Bridge, TerminalService


class _Link:
    """A Starlette WebSocket as the operator's end of a bridge."""

    def __init__(self, websocket: WebSocket) -> None:
        self._ws = websocket

    async def send_bytes(self, data: bytes) -> None:
        await self._ws.send_bytes(data)

    async def send_json(self, message: dict[str, Any]) -> None:
        await self._ws.send_text(json.dumps(message))

    async def receive(self) -> bytes | dict[str, Any] | None:
        while True:
            try:
                message = await self._ws.receive()
            except (WebSocketDisconnect, RuntimeError):
                return None
            if message["type"] == "websocket.disconnect":
                return None
            data = message.get("bytes")
            if data is not None:
                return bytes(data)
            text = message.get("text")
            if text is None:
                continue
            try:
                control = json.loads(text)
            except ValueError:
                continue
            if isinstance(control, dict):
                return control


def terminal_router(manager: Manager) -> APIRouter:
    router = APIRouter()
    service = TerminalService(manager)

    async def deny(websocket: WebSocket, exc: Exception) -> None:
        await errors.deny(websocket, errors.error_response(exc), str(exc))

    async def serve(
        websocket: WebSocket,
        kind: str,
        name: str,
        detail: dict[str, Any],
        opener: Callable[[str], Awaitable[Bridge]],
    ) -> None:
        tokens: TokenSet = websocket.app.state.tokens
        try:
            principal = tokens.authorize(websocket.headers.get("authorization"), "terminal")
        except Forbidden as exc:
            await service.audit_refused(kind, name, exc.actor, exc, detail)
            await deny(websocket, exc)
            return
        except AuthError as exc:
            await deny(websocket, exc)
            return
        try:
            bridge = await opener(principal.actor)  # audits its own refusals
        except ANSWERED as exc:
            await deny(websocket, exc)
            return
        try:
            await websocket.accept()
        except Exception:
            bridge.channel.close()
            bridge.release()
            raise
        await service.run(bridge, _Link(websocket))
        if websocket.application_state is not WebSocketState.DISCONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
                await websocket.close(1000)

    @router.websocket("/v1/devices/{name:path}/terminal")
    async def terminal(
        websocket: WebSocket,
        name: str,
        term: str = "xterm",
        cols: Annotated[int, Query(ge=1, le=9999)] = 80,
        rows: Annotated[int, Query(ge=1, le=9999)] = 24,
    ) -> None:
        term = term[:64]
        await serve(
            websocket,
            "terminal",
            name,
            {"term": term, "size": f"{cols}x{rows}"},
            lambda actor: service.open_terminal(name, actor, term, cols, rows),
        )

    @router.websocket("/v1/devices/{name:path}/exec")
    async def exec_(websocket: WebSocket, name: str, command: str = "") -> None:
        await serve(
            websocket,
            "exec",
            name,
            {"command": command},
            lambda actor: service.open_exec(name, actor, command),
        )

    @router.websocket("/v1/devices/{name:path}/forward")
    async def forward(
        websocket: WebSocket, name: str, port: int = 0, host: str = "127.0.0.1"
    ) -> None:
        await serve(
            websocket,
            "forward",
            name,
            {"target": f"{host}:{port}"},
            lambda actor: service.open_forward(name, actor, host, port),
        )

    @router.get("/v1/audit")
    async def audit(
        request: Request,
        authorization: Annotated[str | None, Header()] = None,
        after: int | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit entries with id above ``after``, oldest first (the newest ``limit`` when
        ``after`` is not given)."""
        tokens: TokenSet = request.app.state.tokens
        tokens.authorize(authorization, "read")
        limit = max(1, min(limit, 1000))
        found = await manager.list_audit(after_id=after or 0, limit=limit, newest=after is None)
        return [asdict(e) for e in found]

    return router
