"""The first cause of a closed connection is the one recorded.

A real manager (reverse-ssh listener on 127.0.0.1:0, the in-memory Store) and real hostile
devices (asyncssh servers whose netconf subsystem sends a hello too large or malformed):
the event recorded says what was wrong with the hello, not "connection closed".
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncssh
import pytest

from callhome.config import KeepaliveConfig, ManagerConfig, SshAlgorithms
from callhome.manager.service import Manager
from callhome.net.keys import identity_of, load_private_key
from callhome.net.netconf import CLOSED_BY_US
from callhome.net.reverse_ssh import DeviceSshSettings, dial_reverse_ssh
from callhome.storage import Event, MemoryStore

MAX_MESSAGE = 4096


async def until(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Wait for ``predicate`` to hold (polling), bounded in time."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = predicate()
        if inspect.isawaitable(found):
            found = await found
        if found:
            return found
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
async def manager(tmp_path: Path) -> AsyncIterator[Manager]:
    config = ManagerConfig.model_validate(
        {
            "state_dir": tmp_path,
            "manager": {
                "listen": ["127.0.0.1:0"],
                "max_message_size": MAX_MESSAGE,
                "handshake_timeout": 10,
            },
        }
    )
    manager = Manager(config, MemoryStore())
    await manager.start()
    yield manager
    await manager.stop()


async def hostile_device(
    manager: Manager, payload: bytes, *, close_after: bool = False
) -> asyncssh.SSHServerConnection:
    """An approved device whose netconf subsystem sends ``payload`` instead of a hello
    (then, with ``close_after``, its end of the channel)."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    await manager.approve(identity_of(host_key).fingerprint, "hostile", "tester")

    class Raw(asyncssh.SSHServerSession[bytes]):
        def connection_made(self, chan: Any) -> None:
            self.chan = chan

        def subsystem_requested(self, subsystem: str) -> bool:
            return True

        def session_started(self) -> None:
            self.chan.write(payload)
            if close_after:
                self.chan.write_eof()

    class Server(asyncssh.SSHServer):
        def begin_auth(self, username: str) -> bool:
            return True

        def public_key_auth_supported(self) -> bool:
            return True

        def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
            return True

        def session_requested(self) -> Raw:
            return Raw()

    conn: asyncssh.SSHServerConnection = await asyncssh.connect_reverse(
        "127.0.0.1",
        manager.ports[0],
        server_host_keys=[host_key],
        server_factory=Server,
        encoding=None,
        config=None,
    )
    return conn


async def failures(manager: Manager) -> list[Event]:
    return await manager.store.list_events(kinds=["protocol-error", "auth-failed"])


@pytest.mark.parametrize(
    ("payload", "close_after", "reason"),
    [
        (
            b"<hello xmlns='urn:ietf:params:xml:ns:netconf:base:1.0'>" + b"x" * 65536,
            False,
            "no NETCONF hello: protocol error: message exceeds the maximum size of "
            f"{MAX_MESSAGE} bytes",
        ),
        (
            b"<notnetconf/>]]>]]>",
            False,
            "no NETCONF hello: protocol error: expected a <hello> in namespace",
        ),
        (
            b"<hello xmlns='urn:ietf:params:xml:ns:netconf:base:1.0'><capabilities>",
            True,
            "no NETCONF hello: protocol error: ",
        ),
    ],
    ids=["too-large", "malformed", "cut-short"],
)
async def test_a_hostile_hello_is_recorded_as_what_it_was(
    manager: Manager,
    payload: bytes,
    close_after: bool,
    reason: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="callhome.manager.service")
    device = await hostile_device(manager, payload, close_after=close_after)
    await asyncio.wait_for(device.wait_closed(), 15)  # the manager hung up
    (event,) = await until(lambda: failures(manager))
    assert event.kind == "protocol-error" and event.device == "hostile"
    assert event.detail["reason"].startswith(reason), event.detail
    assert "hostile" not in manager.sessions
    (line,) = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert line.startswith(f"handshake with {event.detail['address']} (hostile) failed: {reason}")


async def test_a_session_the_manager_ends_says_why(
    manager: Manager, caplog: pytest.LogCaptureFixture
) -> None:
    """A session the manager closes (here: its key is rejected) is disconnected for that
    reason, not for the "connection closed" the transport reports after it; the log has a
    line for the connect and one for the disconnect."""
    caplog.set_level(logging.INFO, logger="callhome.manager.service")
    good = b"""<hello xmlns="urn:ietf:params:xml:ns:netconf:base:1.0"><capabilities>
        <capability>urn:ietf:params:netconf:base:1.0</capability></capabilities>
        <session-id>4</session-id></hello>]]>]]>"""
    device = await hostile_device(manager, good)
    session = await until(lambda: next(iter(manager.sessions.values()), None))
    await manager.reject(session.fingerprint, "token:alice")
    await asyncio.wait_for(device.wait_closed(), 15)
    (gone,) = await until(lambda: manager.store.list_events(kinds=["disconnected"]))
    assert gone.detail["reason"] == "rejected by token:alice"
    fp, address = session.fingerprint, session.address
    assert [r.getMessage() for r in caplog.records if "connected" in r.getMessage()] == [
        f"device hostile ({fp}) connected from {address} over reverse-ssh",
        f"device hostile ({fp}) disconnected: rejected by token:alice",
    ]


class Quiet:
    """A device's NETCONF service that knows only the base operations."""

    capabilities = ["urn:ietf:params:netconf:base:1.0", "urn:ietf:params:netconf:base:1.1"]

    def open_session(self, on_kill: Callable[[], None], principal: object = None) -> int:
        return 1

    def close_session(self, session_id: int) -> None:
        pass

    def handle(self, session_id: int, operation: Any) -> None:
        return None


async def test_a_session_ended_with_close_session_says_the_manager_ended_it(
    manager: Manager,
) -> None:
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    await manager.approve(identity_of(host_key).fingerprint, "polite", "tester")
    manager_key = load_private_key(manager.config.path(manager.config.manager.key))
    settings = DeviceSshSettings(
        host_key=host_key,
        manager_keys=[manager_key],
        handler=Quiet(),  # type: ignore[arg-type]
        auth_timeout=5,
        keepalive=KeepaliveConfig(),
        algorithms=SshAlgorithms(),
    )
    conn = await dial_reverse_ssh("127.0.0.1", manager.ports[0], settings)
    session = await until(lambda: next(iter(manager.sessions.values()), None))
    await session.close(graceful=True)
    await asyncio.wait_for(conn.wait_closed(), 15)
    (gone,) = await until(lambda: manager.store.list_events(kinds=["disconnected"]))
    assert gone.detail["reason"] == CLOSED_BY_US
