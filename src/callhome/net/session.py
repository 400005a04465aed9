"""DeviceSession: what the manager holds for one connected device, whatever the orientation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from callhome.identity import Identity
from callhome.net.netconf import NetconfClient


class Orientation(StrEnum):
    """Who plays which transport role on a call-home connection (see DESIGN.md)."""

    REVERSE_SSH = "reverse-ssh"
    REVERSE_TLS = "reverse-tls"
    TURN = "turn"


@dataclass
class DeviceSession:
    """One connected device. Jobs, the API and the CLI hold only this."""

    identity: Identity
    orientation: Orientation
    address: str
    netconf: NetconfClient
    close_transport: Callable[[], None]
    name: str = ""
    connected_at: float = field(default_factory=time.time)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    close_reason: str = ""

    @property
    def capabilities(self) -> tuple[str, ...]:
        return self.netconf.capabilities

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    async def close(self, graceful: bool = True) -> None:
        """End the NETCONF session (politely if ``graceful``) and the connection."""
        if graceful and not self.netconf.closed:
            await self.netconf.close_session()
        self.close_transport()

    async def wait_closed(self) -> None:
        await self.closed.wait()

    def mark_closed(self, reason: str) -> None:
        if not self.closed.is_set():
            self.close_reason = reason
            self.closed.set()


class Admission(Protocol):
    """The manager's side of every orientation adapter: who may in, and what happened."""

    def admit(self, identity: Identity, address: str) -> str | None:
        """Decide synchronously, before any credential is offered.

        Returns the name of the credential set to use toward this device ("" for the
        default), or None to refuse the connection.
        """
        ...

    def handshake_failed(
        self, address: str, identity: Identity | None, reason: str, *, auth: bool = False
    ) -> None:
        """A connection ended before it became a session; ``auth`` when authentication
        (ours toward the device, or the device's) is what failed."""
        ...

    def session_ready(self, session: DeviceSession) -> Awaitable[None]: ...

    def session_closed(self, session: DeviceSession) -> Awaitable[None]: ...
