"""Run a manager process: the call-home listeners plus its HTTP API, until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from callhome.api.app import create_app
from callhome.config import DEFAULT_API_PORT, ManagerConfig, load_api_tokens, parse_hostport
from callhome.manager.service import Manager
from callhome.net.keys import write_private
from callhome.storage import open_store

log = logging.getLogger(__name__)


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the manager process owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class _WebSockets(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, its handshake counted as done once a denial response
    (an HTTP answer instead of the upgrade: how a refused terminal is told why) has been
    sent. Without that, uvicorn logs "ASGI callable returned without completing handshake"
    at ERROR for every refusal, as its wsproto protocol does not."""

    async def send(self, message: Any) -> None:
        await super().send(message)
        if message["type"] == "websocket.http.response.body" and not message.get("more_body"):
            self.handshake_complete = True


def api_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    """The HTTP server of the API (not started): refusals and access are not logged by it."""
    return _ApiServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws=_WebSockets,
        )
    )


def ensure_token(path: Path) -> str:
    """The API bearer token, generated on first start into a private file."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_private(path, (token + "\n").encode())
    return token


def write_client_file(path: Path, url: str, token: str) -> None:
    """Leave the API address and token where the CLI looks for them (0600)."""
    write_private(path, f'url = "{url}"\ntoken = "{token}"\n'.encode())


async def serve_manager(config: ManagerConfig, *, ready: asyncio.Event | None = None) -> None:
    store = open_store(config.database_url)
    manager = Manager(config, store)
    await manager.start()
    token = ensure_token(config.path(config.api.token_file))
    host, port = parse_hostport(config.api.listen, DEFAULT_API_PORT)
    app = create_app(manager, token, load_api_tokens(config.path(config.api.tokens_file)))
    server = api_server(app, host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    api_task = asyncio.create_task(server.serve())
    while not server.started:
        if api_task.done():
            await manager.stop()
            api_task.result()
            raise RuntimeError("the API server stopped at start")
        await asyncio.sleep(0.02)
    bound = port
    for srv in server.servers:
        for sock in srv.sockets:
            bound = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{bound}"
    if config.api.client_file is not None:
        write_client_file(config.path(config.api.client_file), url, token)
    where = ", ".join(manager.addresses)
    print(f"callhome manager: call home on {where}, API on {url}", flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        server.should_exit = True
        await api_task
        await manager.stop()
