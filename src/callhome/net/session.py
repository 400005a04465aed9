"""DeviceSession: what the manager holds for one connected device, whatever the orientation."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from callhome.config import DEFAULT_SSH_PORT, DEFAULT_TLS_PORT, DEFAULT_TURN_PORT
from callhome.errors import DeviceError
from callhome.identity import Identity
from callhome.net.channels import DeviceChannel
from callhome.net.netconf import NetconfClient
from callhome.net.snmp import SnmpClient


def hostport(host: str, port: int) -> str:
    """``host:port``, or ``[v6]:port``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def peer_address(info: Callable[[str], object]) -> str:
    """``host:port`` of a connection's far end, from its ``get_extra_info``."""
    peer = info("peername")
    if not isinstance(peer, tuple) or len(peer) < 2:
        return "unknown"
    return hostport(str(peer[0]), int(peer[1]))


def local_address(info: Callable[[str], object]) -> tuple[str, int] | None:
    """(host, port) of a connection's own end, from its ``get_extra_info``."""
    sockname = info("sockname")
    if isinstance(sockname, tuple) and len(sockname) >= 2:
        return str(sockname[0]), int(sockname[1])
    return None


class Orientation(StrEnum):
    """Who plays which transport role on a call-home connection (see DESIGN.md)."""

    REVERSE_SSH = "reverse-ssh"
    REVERSE_TLS = "reverse-tls"
    TURN = "turn"

    @property
    def model_transport(self) -> str:
        """The transport of this connection as ietf-netconf-server's call-home endpoints name
        it (``ssh``, ``tls``); turn, which the model has no place for, counts as ``ssh``."""
        return "tls" if self is Orientation.REVERSE_TLS else "ssh"

    @property
    def default_port(self) -> int:
        """The manager's well-known port for this orientation."""
        return {
            Orientation.REVERSE_SSH: DEFAULT_SSH_PORT,
            Orientation.REVERSE_TLS: DEFAULT_TLS_PORT,
            Orientation.TURN: DEFAULT_TURN_PORT,
        }[self]


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
    channels: ChannelOpener | None = None
    snmp_opener: Callable[[], Awaitable[SnmpClient]] | None = None
    services: tuple[str, ...] = ("netconf",)
    """What the connection carries: 'netconf' (and SNMP beside it where ``snmp_opener`` is
    set), or ('snmp',) alone for SNMP over TLS (RFC 6353), whose ``netconf`` is closed."""
    on_snmp_channel: Callable[[SnmpClient], None] | None = None
    """Called with each SNMP client this session opens, before engine discovery (the
    manager attaches its notification receiver here)."""
    operator_channels: int = 0
    """Terminals, commands and forwards an operator has open on this connection now."""
    cause: str = ""
    """Why the manager closed the connection, when it did (``close_for``): the reason the
    session ends with, over what the transport reports next."""
    local_address: tuple[str, int] | None = None
    """The manager's (host, port) the device's connection reached: the listener's address
    as the device dialled it (behind a NAT or load balancer, the manager's public names are
    configured instead: ``[manager] public_addresses``)."""
    _snmp: SnmpClient | None = field(default=None, init=False, repr=False)
    _snmp_lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False, repr=False)

    @property
    def capabilities(self) -> tuple[str, ...]:
        return self.netconf.capabilities

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint

    @property
    def carries_netconf(self) -> bool:
        return "netconf" in self.services

    async def close(self, graceful: bool = True) -> None:
        """End the NETCONF session (politely if ``graceful``) and the connection."""
        if graceful and not self.netconf.closed:
            await self.netconf.close_session()
        self.close_transport()

    def _opener(self) -> ChannelOpener:
        if self.channels is None:
            raise DeviceError(
                f"the {self.orientation.value} connection of this device carries only NETCONF"
            )
        return self.channels

    async def open_terminal(
        self, term: str, size: tuple[int, int], *, command: str | None = None, limit: int = 65536
    ) -> DeviceChannel:
        """An interactive terminal (PTY of ``term`` type, ``size`` = (cols, rows)).

        ``command`` None runs what the device offers as its shell."""
        return await self._opener().open_terminal(term, size, command, limit)

    async def open_exec(self, command: str, *, limit: int = 65536) -> DeviceChannel:
        """Run ``command`` without a terminal: stdout and stderr apart, then an exit status."""
        return await self._opener().open_exec(command, limit)

    async def open_forward(
        self, port: int, host: str = "127.0.0.1", *, limit: int = 65536
    ) -> DeviceChannel:
        """A TCP stream to host:port as the device sees them (if the device allows it)."""
        return await self._opener().open_forward(host, port, limit)

    async def snmp(self) -> SnmpClient:
        """The SNMP client of this connection (RFC 5592 ``snmp`` channel), opened on first
        use and again after the device closed it; engine discovery is done."""
        if self.snmp_opener is None:
            raise DeviceError(
                f"the {self.orientation.value} connection of this device carries no SNMP"
            )
        async with self._snmp_lock:
            if self._snmp is None or self._snmp.closed:
                client = await self.snmp_opener()
                if self.on_snmp_channel is not None:
                    self.on_snmp_channel(client)
                try:
                    if client.engine_id is None:
                        await client.discover()
                except BaseException:
                    client.close()
                    raise
                self._snmp = client
            return self._snmp

    async def wait_closed(self) -> None:
        await self.closed.wait()

    def close_for(self, reason: str) -> None:
        """Close the connection because of ``reason``, the cause it is recorded with
        (unless it had ended already, or another cause came first)."""
        if not self.cause and not self.closed.is_set():
            self.cause = reason
        self.close_transport()

    def mark_closed(self, reason: str) -> None:
        """The connection has ended: the first cause known is the one kept."""
        if not self.closed.is_set():
            self.close_reason = self.cause or reason
            self.closed.set()


class ChannelOpener(Protocol):
    """Opens terminals, commands and forwards on one connection (per orientation)."""

    async def open_terminal(
        self, term: str, size: tuple[int, int], command: str | None, limit: int
    ) -> DeviceChannel: ...

    async def open_exec(self, command: str, limit: int) -> DeviceChannel: ...

    async def open_forward(self, host: str, port: int, limit: int) -> DeviceChannel: ...


class Admission(Protocol):
    """The manager's side of every orientation adapter: who may in, and what happened."""

    def preferred(self, identities: Sequence[Identity]) -> Identity:
        """Of several identities of one peer (a certificate's mapped name and its
        fingerprint), the one to know it by: the first the registry has approved, else the
        first."""
        ...

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
