"""Fakes shared by the manager's unit tests of sessions: a real ``DeviceSession`` over a fake
transport, and a bounded wait for a condition."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, cast

from callhome.identity import Identity
from callhome.net.netconf import NetconfClient
from callhome.net.session import ChannelOpener, DeviceSession, Orientation

DEV_FP = "SHA256:" + "A" * 42 + "E"
"""The fake device's SSH key fingerprint."""
WAIT = 5.0
"""Seconds any condition is waited for before the test fails (it holds at once when right)."""


class FakeTransport:
    """The connection below a session: closing it ends the session a loop turn later, as
    the real transports report the end from their ``connection_lost``."""

    def __init__(self) -> None:
        self.closes = 0
        self.session: DeviceSession | None = None

    def close(self) -> None:
        self.closes += 1
        session = self.session
        if session is not None:
            asyncio.get_running_loop().call_soon(session.mark_closed, "connection closed")


def device_session(
    netconf: Any,
    *,
    name: str = "dev",
    fingerprint: str = DEV_FP,
    channels: ChannelOpener | None = None,
) -> tuple[DeviceSession, FakeTransport]:
    """A real DeviceSession whose NETCONF client is ``netconf`` (a fake) and whose
    transport is a FakeTransport."""
    transport = FakeTransport()
    session = DeviceSession(
        Identity("ssh-key", fingerprint, "ssh-ed25519"),
        Orientation.REVERSE_SSH,
        "192.0.2.7:40000",
        cast(NetconfClient, netconf),
        transport.close,
        name=name,
        channels=channels,
    )
    transport.session = session
    return session, transport


async def until(condition: Callable[[], bool], what: str) -> None:
    """Wait until ``condition()`` holds, looking again at every turn of the event loop
    (and every millisecond, for stores that work in a thread); fail after ``WAIT`` s."""
    try:
        async with asyncio.timeout(WAIT):
            while not condition():
                await asyncio.sleep(0.001)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT:g}s: {what}") from None


async def until_stored(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    """``until``, for a condition that asks the store."""
    try:
        async with asyncio.timeout(WAIT):
            while not await condition():
                await asyncio.sleep(0.001)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT:g}s: {what}") from None


async def turns(n: int = 50) -> None:
    """Let every ready task run ``n`` times over: a wrong implementation that would go on
    (read more, write more) gets every chance to, before a test says it did not."""
    for _ in range(n):
        await asyncio.sleep(0)
