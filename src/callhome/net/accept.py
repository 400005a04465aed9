"""What every manager listener shares, whatever its orientation: the limits it runs under,
its flood guard and tasks, and the sequence that turns an admitted connection into a
``DeviceSession``.

An orientation adapter (reverse_ssh, reverse_tls, turn, snmp_tls) does its transport's
handshake and judges the peer through :class:`~callhome.net.session.Admission`; from
there the steps are the same everywhere:

1. :func:`exchange_hellos`: our hello out, the device's in, within the handshake time;
   a device that closes at once or breaks a rule is told apart from one that is slow;
2. a ``DeviceSession`` made and handed up with :meth:`ManagerListener.ready`;
3. when the transport ends, :meth:`ManagerListener.end_session`: the client sees the end
   of its stream, the session closes with the first cause known, the admission is told.
"""

from __future__ import annotations

import abc
import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from callhome.config import KeepaliveConfig, ManagerSection
from callhome.errors import SessionClosed
from callhome.net.guard import GuardLimits, HandshakeGuard, guard_limits
from callhome.net.netconf import (
    CLOSED_AT_ONCE,
    NetconfClient,
    NetconfLimits,
    NotificationBudget,
    NotificationBudgets,
    Write,
    netconf_limits,
)
from callhome.net.session import Admission, DeviceSession

__all__ = [
    "ListenerLimits",
    "ManagerListener",
    "NoHello",
    "StreamClient",
    "exchange_hellos",
    "no_hello",
]


@dataclass(frozen=True)
class ListenerLimits:
    """The time, size and flood budgets of a manager listener (``[manager]`` and
    ``[manager.guard]``); every orientation gets the same."""

    keepalive: KeepaliveConfig = field(default_factory=KeepaliveConfig)
    handshake_timeout: float = 20.0
    """Seconds from the first byte to a DeviceSession (transport handshake and hellos)."""
    rpc_timeout: float = 60.0
    netconf: NetconfLimits = field(default_factory=NetconfLimits)
    max_unauthenticated: int = 256
    guard: GuardLimits = field(default_factory=GuardLimits)

    @classmethod
    def from_config(cls, section: ManagerSection) -> ListenerLimits:
        return cls(
            keepalive=section.keepalive,
            handshake_timeout=section.handshake_timeout,
            rpc_timeout=section.rpc_timeout,
            netconf=netconf_limits(section),
            max_unauthenticated=section.max_unauthenticated,
            guard=guard_limits(section.guard),
        )


class StreamClient(Protocol):
    """What the manager runs over an admitted connection (a NETCONF or an SNMP client)."""

    def feed(self, data: bytes) -> None: ...

    def feed_eof(self, reason: str = ...) -> None: ...

    @property
    def close_reason(self) -> str | None: ...

    @property
    def broke_protocol(self) -> bool:
        """Whether what the device sent broke the protocol (it owes a penalty then)."""
        ...


class NoHello(Exception):
    """The device's NETCONF hello never came; the message says what ended the session."""


def no_hello(netconf: NetconfClient | None, otherwise: object = None) -> str:
    """Why the device's hello never came: what ended its NETCONF session first, else
    ``otherwise`` (an exception, a text; nothing: a timeout)."""
    cause = netconf.close_reason if netconf is not None else None
    return f"no NETCONF hello: {cause or str(otherwise or '') or 'timeout'}"


async def exchange_hellos(
    write: Write,
    close: Callable[[], None],
    attach: Callable[[NetconfClient], None],
    limits: ListenerLimits,
    *,
    budget: NotificationBudget | None,
    made: Callable[[NetconfClient], None] | None = None,
    write_errors: tuple[type[BaseException], ...] = (OSError,),
) -> NetconfClient:
    """A NetconfClient over an admitted connection, its hellos exchanged.

    ``write`` and ``close`` are the connection's (it exists for this session and ends
    with it); ``attach`` connects the client to the bytes read, once our hello is out;
    ``budget`` is the device's notification budget (kept across its sessions); ``made``
    is told of the client as soon as it exists (so that a connection lost during the
    exchange can say why). Raises :class:`NoHello`, or TimeoutError from an
    enclosing deadline."""
    netconf = NetconfClient(
        write, close, timeout=limits.rpc_timeout, limits=limits.netconf, budget=budget
    )
    if made is not None:
        made(netconf)
    try:
        netconf.send_hello()
    except write_errors:  # the device closed the channel at once
        attach(netconf)  # what it sent, and its end, may say why
        raise NoHello(no_hello(netconf, CLOSED_AT_ONCE)) from None
    attach(netconf)
    try:
        await netconf.wait_hello(limits.handshake_timeout)
    except (SessionClosed, TimeoutError) as exc:
        raise NoHello(no_hello(netconf, exc)) from None
    return netconf


class ManagerListener(abc.ABC):
    """The common part of a manager listener: its admission, limits, flood guard, the
    devices' notification budgets and the tasks it spawns (cancelled by
    :meth:`cancel_tasks` when it closes)."""

    def __init__(self, admission: Admission, limits: ListenerLimits, log: logging.Logger):
        self.admission = admission
        self.limits = limits
        self.guard = HandshakeGuard(limits, log, limits.guard)
        self.budgets = NotificationBudgets(limits.netconf)
        """Each device's notification budget, kept across its sessions."""
        self._tasks: set[asyncio.Task[Any]] = set()

    @abc.abstractmethod
    async def listen(self, host: str, port: int) -> int:
        """Start accepting on host:port; returns the port bound (useful with port 0)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Stop accepting, and cancel what this listener spawned."""

    def spawn(self, work: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def ready(self, session: DeviceSession) -> None:
        """Hand a new session up to the manager, unless its connection was lost while it
        was being made (the loss has been reported: the session is only marked closed)."""
        if session.carries_netconf and session.netconf.closed:
            session.mark_closed(session.netconf.close_reason or "connection lost")
            return
        await self.admission.session_ready(session)

    def end_session(self, session: DeviceSession, client: StreamClient, reason: str) -> None:
        """The transport under ``session`` has ended with ``reason``: its client sees the
        end of its stream, the session closes with the first cause known, a device that
        broke the protocol owes a penalty, and the admission hears of it."""
        client.feed_eof(reason)
        session.mark_closed(client.close_reason or reason)
        if client.broke_protocol:
            self.guard.broke_protocol(session.fingerprint)
        self.spawn(self.admission.session_closed(session))

    def cancel_tasks(self) -> None:
        for task in list(self._tasks):
            task.cancel()
