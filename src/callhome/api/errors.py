"""Errors as HTTP answers: the one mapping of the API.

A refusal (a :class:`~callhome.errors.CallHomeError`: no token, no right, no such device,
the device away, an ``rpc-error`` ...) and a request that does not fit its model are
*answers*: a JSON body ``{"error": kind, "message": ...}`` with their status, at most one
short DEBUG line in the log, and the client's keep-alive connection stays open.

Anything else that escapes a route is a bug: :class:`CatchBugs` answers it with HTTP 500
naming a request id (and nothing of the exception, which may hold data) and logs its
traceback once, with that id. Starlette treats a handler registered for ``Exception`` as
its server-error handler, which answers and then re-raises: the server then logs
"Exception in ASGI application" with a traceback for every such response and closes the
connection. That is why no handler for ``Exception`` is registered here.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from typing import Any

from fastapi import FastAPI, Request, WebSocket
from fastapi.exceptions import (
    RequestValidationError,
    ValidationException,
    WebSocketRequestValidationError,
)
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from callhome.api.auth import Forbidden
from callhome.errors import (
    AuthError,
    CallHomeError,
    ConfigError,
    Conflict,
    DeviceError,
    DeviceOffline,
    NotFound,
    ProtocolError,
    RpcError,
    ServiceRefused,
    SessionClosed,
    UnknownDevice,
)

log = logging.getLogger(__name__)

STATUS: list[tuple[type[Exception], int]] = [
    (Forbidden, 403),
    (AuthError, 401),
    (UnknownDevice, 404),
    (NotFound, 404),
    (DeviceOffline, 409),
    (Conflict, 409),
    (RpcError, 422),
    (ConfigError, 400),
    (ServiceRefused, 403),
    (DeviceError, 409),
    (ProtocolError, 502),
    (SessionClosed, 502),
    (TimeoutError, 504),
    (CallHomeError, 500),
]
"""HTTP status of each error class, the first that matches (subclasses first)."""

ANSWERED: tuple[type[Exception], ...] = (CallHomeError, TimeoutError)
"""What a route may raise as an answer: everything else that escapes is a bug."""


def status_of(exc: Exception) -> int:
    return next((code for cls, code in STATUS if isinstance(exc, cls)), 500)


def error_response(exc: Exception) -> JSONResponse:
    """The answer for a refusal: its status and ``{"error", "message"}`` (an rpc-error's
    fields and the whole reply besides)."""
    body: dict[str, Any] = {"error": type(exc).__name__, "message": str(exc) or type(exc).__name__}
    if isinstance(exc, RpcError):
        body["rpc_errors"] = [e.to_json() for e in exc.errors]
        body["reply"] = exc.reply_xml
    response = JSONResponse(body, status_code=status_of(exc))
    if response.status_code == 401:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def validation_message(exc: ValidationException) -> str:
    """Each problem of a request that does not fit its model, named by where it is."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err.get("loc", ()))
        problems.append(f"{where}: {err.get('msg', 'invalid')}" if where else err.get("msg", ""))
    return "; ".join(problems) or "invalid request"


def validation_response(exc: ValidationException) -> JSONResponse:
    """A request that does not fit its model: 400 with ``validation_message``."""
    body = {"error": "InvalidRequest", "message": validation_message(exc)}
    return JSONResponse(body, status_code=400)


async def deny(websocket: WebSocket, response: JSONResponse, why: str) -> None:
    """Refuse a WebSocket not accepted yet: ``response`` instead of the upgrade (on a server
    without the denial extension, a close with code 4000 + its status and ``why``)."""
    log.debug("WebSocket %s refused: %d", websocket.url.path, response.status_code)
    try:
        await websocket.send_denial_response(response)
    except RuntimeError:
        await websocket.close(code=4000 + response.status_code, reason=why[:120])


def new_request_id() -> str:
    return secrets.token_hex(6)


def bug_body(request_id: str) -> dict[str, str]:
    return {
        "error": "InternalError",
        "message": f"internal error (request {request_id}): the manager's log has the details",
        "request_id": request_id,
    }


def install(app: FastAPI) -> None:
    """Answer refusals and invalid requests; catch what is left as a bug."""

    async def refused(request: Request, exc: Exception) -> JSONResponse:
        response = error_response(exc)
        log.debug(
            "%s %s refused: %d %s",
            request.method,
            request.url.path,
            response.status_code,
            type(exc).__name__,
        )
        return response

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        log.debug("%s %s refused: invalid request", request.method, request.url.path)
        return validation_response(exc)

    async def invalid_websocket(websocket: WebSocket, exc: Exception) -> None:
        assert isinstance(exc, WebSocketRequestValidationError)
        response = validation_response(exc)
        await deny(websocket, response, validation_message(exc))

    for cls in ANSWERED:
        app.add_exception_handler(cls, refused)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(WebSocketRequestValidationError, invalid_websocket)
    app.add_middleware(CatchBugs)


class CatchBugs:
    """ASGI middleware: an exception that no handler answered is a bug. HTTP gets a 500
    with a request id (a WebSocket not accepted yet, a denial with it; one accepted, close
    code 1011); the traceback is logged once, with the id, and the exception goes no
    further (so the server neither logs it again nor drops the connection)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] in (
                "http.response.start",
                "websocket.accept",
                "websocket.close",
                "websocket.http.response.start",
            ):
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception:
            request_id = new_request_id()
            log.exception(
                "bug: %s %s failed (request %s)",
                scope.get("method", "WEBSOCKET"),
                scope.get("path", ""),
                request_id,
            )
            with contextlib.suppress(Exception):  # the client may be gone
                await self._answer(scope, send, started, request_id)

    @staticmethod
    async def _answer(scope: Scope, send: Send, started: bool, request_id: str) -> None:
        response = JSONResponse(bug_body(request_id), status_code=500)
        response.headers["X-Request-Id"] = request_id
        if scope["type"] == "http":
            if not started:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": response.raw_headers,
                    }
                )
                await send({"type": "http.response.body", "body": response.body})
            return
        if not started and "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 500,
                    "headers": response.raw_headers,
                }
            )
            await send({"type": "websocket.http.response.body", "body": response.body})
        else:
            await send({"type": "websocket.close", "code": 1011, "reason": request_id})
