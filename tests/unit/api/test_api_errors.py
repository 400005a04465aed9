"""Refusals are answers, not crashes; a bug is a 500 with a request id, logged once.

The API runs over a Manager on the in-memory Store, both through httpx's ASGI transport and
under the real uvicorn server the manager runs (``api_server``) on 127.0.0.1:0, where one
client's keep-alive connection must survive every refusal and the server's log must hold no
traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from callhome.api.app import create_app
from callhome.api.server import api_server
from callhome.config import ApiToken, ManagerConfig
from callhome.errors import ErrorTag, RpcError
from callhome.manager.service import Manager
from callhome.storage import MemoryStore

TOKEN = "admin-t0ken"
READER = "reader-t0ken"
DEV_FP = "SHA256:" + "A" * 42 + "E"
OTHER_FP = "SHA256:" + "B" * 42 + "E"


def reader_token() -> ApiToken:
    digest = hashlib.sha256(READER.encode()).hexdigest()
    return ApiToken(name="reader", sha256=digest, rights=["read"])


@pytest.fixture
async def manager(tmp_path: Path) -> Manager:
    manager = Manager(ManagerConfig(state_dir=tmp_path), MemoryStore())
    await manager.approve(DEV_FP, "dev1", "tester")  # approved, away
    return manager


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# Each refusal: method, path, request arguments, status, error kind.
REFUSALS: list[tuple[str, str, dict[str, Any], int, str]] = [
    ("GET", "/v1/devices", {}, 401, "AuthError"),
    ("GET", "/v1/devices", {"headers": auth("wrong")}, 401, "AuthError"),
    ("POST", "/v1/devices/dev1/reject", {"headers": auth(READER)}, 403, "Forbidden"),
    ("GET", "/v1/devices/nosuch", {"headers": auth(TOKEN)}, 404, "UnknownDevice"),
    ("GET", "/v1/jobs/4242", {"headers": auth(TOKEN)}, 404, "NotFound"),
    (
        "POST",
        f"/v1/devices/{OTHER_FP}/approve",
        {"headers": auth(TOKEN), "json": {"name": "dev1"}},
        409,
        "Conflict",
    ),
    (
        "POST",
        "/v1/devices/dev1/netconf",
        {"headers": auth(TOKEN), "json": {"operation": "get", "filter": "<a"}},
        400,
        "ConfigError",
    ),
    (
        "POST",
        "/v1/devices/dev1/netconf",
        {"headers": auth(TOKEN), "json": {"operation": 7}},
        400,
        "InvalidRequest",
    ),
]


def assert_refused(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == kind and body["message"], body
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_each_refusal_is_its_status_and_body(manager: Manager) -> None:
    app = create_app(manager, TOKEN, [reader_token()])
    transport = httpx.ASGITransport(app=app)  # raises what the app lets escape
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        for method, path, kwargs, status, kind in REFUSALS:
            assert_refused(await client.request(method, path, **kwargs), status, kind)


async def test_an_rpc_error_is_422_with_every_field(
    manager: Manager, monkeypatch: pytest.MonkeyPatch
) -> None:
    error = RpcError.single(ErrorTag.LOCK_DENIED, "held by 7", info={"session-id": "7"})

    def refusing(name: str) -> Any:
        raise error

    monkeypatch.setattr(manager, "resolve", refusing)
    app = create_app(manager, TOKEN)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as client:
        response = await client.get("/v1/devices/dev1", headers=auth(TOKEN))
    assert_refused(response, 422, "RpcError")
    (found,) = response.json()["rpc_errors"]
    assert found["tag"] == "lock-denied" and found["info_items"] == {"session-id": "7"}


# -- under the real server -------------------------------------------------------------------


@asynccontextmanager
async def serving(manager: Manager) -> AsyncIterator[str]:
    """The API under the manager's own uvicorn settings on 127.0.0.1:0; its base URL."""
    server = api_server(create_app(manager, TOKEN, [reader_token()]), "127.0.0.1", 0)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the API server stopped at start"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def local_port(response: httpx.Response) -> int:
    """The client's own port of the TCP connection a response came on."""
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog


def no_traceback(text: str) -> None:
    assert "Traceback" not in text, text
    assert "Exception in ASGI application" not in text, text


async def test_refusals_keep_the_connection_and_log_no_traceback(
    manager: Manager, logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    async with serving(manager) as url, httpx.AsyncClient(base_url=url) as client:
        ports = set()
        for _ in range(3):
            for method, path, kwargs, status, kind in REFUSALS:
                response = await client.request(method, path, **kwargs)
                assert_refused(response, status, kind)
                ports.add(local_port(response))
        ok = await client.get("/v1/devices", headers=auth(TOKEN))
        assert ok.status_code == 200 and [d["name"] for d in ok.json()] == ["dev1"]
        ports.add(local_port(ok))
    assert len(ports) == 1, f"{len(ports)} TCP connections for {3 * len(REFUSALS) + 1} requests"
    refused = [r for r in logs.records if r.name.startswith("callhome.api")]
    assert len(refused) == 3 * len(REFUSALS)  # one short line each ...
    for record in refused:
        assert record.levelno == logging.DEBUG and record.exc_info is None
        assert len(record.getMessage()) < 120 and "refused" in record.getMessage()
    assert not [r for r in logs.records if r.levelno >= logging.WARNING]
    no_traceback(logs.text)
    no_traceback(capfd.readouterr().err)


async def test_a_bug_is_a_500_with_a_request_id_logged_once(
    manager: Manager,
    monkeypatch: pytest.MonkeyPatch,
    logs: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    async def broken() -> Any:
        raise RuntimeError("a bug that mentions private-detail")

    monkeypatch.setattr(manager, "list_devices", broken)
    async with serving(manager) as url, httpx.AsyncClient(base_url=url) as client:
        first = await client.get("/v1/devices", headers=auth(TOKEN))
        second = await client.get("/v1/devices/dev1", headers=auth(TOKEN))  # still served
        assert local_port(first) == local_port(second)
    assert first.status_code == 500
    body = first.json()
    request_id = body["request_id"]
    assert body["error"] == "InternalError" and request_id in body["message"]
    assert first.headers["X-Request-Id"] == request_id
    assert "private-detail" not in first.text  # the exception is not the client's business
    assert second.status_code == 200 and second.json()["name"] == "dev1"
    logged = [r for r in logs.records if r.exc_info is not None]
    assert len(logged) == 1 and request_id in logged[0].getMessage()
    assert logged[0].levelno == logging.ERROR
    assert logs.text.count("Traceback") <= 1
    no_traceback(capfd.readouterr().err)  # the server did not log it again


async def test_refused_websockets_say_why_and_log_no_error(
    manager: Manager, logs: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    cases = [
        ("/v1/devices/dev1/terminal", "wrong", 401, "AuthError"),
        ("/v1/devices/dev1/exec?command=true", READER, 403, "Forbidden"),
        ("/v1/devices/nosuch/terminal", TOKEN, 404, "UnknownDevice"),
        ("/v1/devices/dev1/forward?port=22", TOKEN, 409, "DeviceOffline"),
        ("/v1/devices/dev1/exec?command=", TOKEN, 400, "ConfigError"),
        ("/v1/devices/dev1/terminal?cols=0", TOKEN, 400, "InvalidRequest"),
    ]
    async with serving(manager) as url:
        for path, token, status, kind in cases:
            ws_url = url.replace("http://", "ws://") + path
            with pytest.raises(InvalidStatus) as caught:
                async with connect(ws_url, additional_headers=auth(token)):
                    pass
            response = caught.value.response
            assert response.status_code == status, path
            assert json.loads(response.body or b"{}")["error"] == kind
    assert not [r for r in logs.records if r.levelno >= logging.WARNING], logs.text
    err = capfd.readouterr().err
    assert "ERROR" not in err, err
    no_traceback(err)
    admin = "token:" + hashlib.sha256(TOKEN.encode()).hexdigest()[:8]
    audited = [e for e in await manager.store.list_audit(limit=100) if e.action != "approve"]
    assert [(e.actor, e.action, e.target, e.detail["error"]) for e in audited] == [
        ("token:reader", "refused exec", "dev1", "Forbidden"),
        (admin, "refused terminal", "nosuch", "UnknownDevice"),
        (admin, "refused forward", "dev1", "DeviceOffline"),
        (admin, "refused exec", "dev1", "ConfigError"),
    ]  # nothing for the request without a valid token: it names nobody
    away = audited[2]
    assert away.detail["target"] == "127.0.0.1:22"
    assert away.detail["reason"] == "device 'dev1' is not connected"
