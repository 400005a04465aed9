"""The manager's flood guard for call-home handshakes, one per listener.

A manager accepts any socket on its well-known call-home ports (the seed's section 4: the
DDoS target moves from the device to the manager), so what anyone can send before
authenticating must not lock the fleet out. Every listener (reverse-ssh, turn, reverse-tls
and SNMP over TLS) keeps one :class:`HandshakeGuard`, which does what trusted SSH servers do
(OpenSSH's MaxStartups and PerSourcePenalties):

- **A deadline for the first bytes.** A connection whose peer has sent no SSH version line
  ``first_bytes_timeout`` seconds after it was accepted is dropped, long before the
  whole-handshake deadline (reverse-ssh and turn).
- **The oldest silent one goes first.** With ``max_unauthenticated`` handshakes in
  progress, a new connection drops the oldest one whose peer has said nothing (no SSH
  version line; over TLS, where the manager speaks first, no finished TLS handshake); only
  when every one in progress has spoken is the newcomer refused.
- **Per source.** One address may hold at most ``max_per_source`` handshakes at once.
- **Penalties.** A handshake that fails (never spoke, failed key exchange or
  authentication, an unknown key) adds seconds to its address's penalty (5 for a silent one,
  1 for any other), which wears off a second per second; while it is over ``min_penalty``
  the address's new connections are refused at once. So an address that fails again and
  again (a scanner, a flood) is shut out for a while, at most ``max_penalty`` seconds, and a
  device that retries now and then (one not approved yet) is not. Addresses in ``trusted``
  networks are exempt from the per-source cap and the penalties.
- **Devices that break the protocol.** A session that ends because the device broke the
  protocol (a message over one of its budgets, not well-formed, or not asked for) adds 5
  seconds to that device's own penalty, by identity, wherever it calls from; while it owes
  over ``min_penalty`` its connections are refused once it has shown its key. So a device
  that sends one bad message calls again at once, and an authenticated device that does it
  again and again (a flood from inside) gets one session every few seconds at most.
- **Refused before anything is built.** On the SSH listeners (reverse-ssh, turn) a socket
  from a penalized address, or from one at its cap, is refused as it is accepted
  (:class:`AcceptGate`), before asyncssh builds a connection for it: a flood that is being
  turned away costs the manager little more than the accepts.
- **Quiet logs.** What the guard drops is counted and logged as one line per
  ``log_interval``, never a line per connection.
- A handshake times out after ``handshake_timeout`` seconds where the adapter gives it a
  callback (``begin(address, on_timeout)``).

What "in progress" covers is the adapter's to say, by when it calls :meth:`Handshake.settle`:
reverse-ssh and turn settle once SSH authentication completes (their timer runs on until the
session is ready), reverse-tls once the session is ready. :meth:`Handshake.end` is called
when the connection is gone; a handshake that ends unsettled is a failure.

The settings are read when a connection arrives. Time comes from ``clock`` (the event
loop's by default).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

from callhome.config import GuardSection

__all__ = [
    "LISTEN_BACKLOG",
    "AcceptGate",
    "GuardLimits",
    "GuardSettings",
    "Handshake",
    "HandshakeGuard",
    "guard_limits",
]

SILENT_PENALTY = 5.0
"""Seconds of penalty for a handshake whose peer never spoke."""
FAILED_PENALTY = 1.0
"""Seconds of penalty for any other failed handshake."""
BROKEN_PENALTY = 5.0
"""Seconds of penalty for a device whose session ended because it broke the protocol (a
message over a budget, not well-formed, or not asked for)."""
LISTEN_BACKLOG = 1024
"""Connections the kernel queues for accept on a call-home listener (capped by
``net.core.somaxconn``). asyncio's default of 100 overflows while a flood is being turned
away: a device's connection is then dropped by the kernel, and it waits for a TCP
retransmission (1 s, then 3 s ...) before the guard even sees it."""


class GuardSettings(Protocol):
    """The fields of a listener's limits the guard reads."""

    @property
    def handshake_timeout(self) -> float: ...

    @property
    def max_unauthenticated(self) -> int: ...


@dataclass(frozen=True)
class GuardLimits:
    """The guard's knobs beyond ``GuardSettings`` (``[manager] guard``)."""

    first_bytes_timeout: float = 5.0
    max_per_source: int = 32
    min_penalty: float = 15.0
    max_penalty: float = 60.0
    trusted: Sequence[str] = ()
    """Networks (CIDR, or single addresses) exempt from the per-source cap and penalties."""
    log_interval: float = 10.0


def guard_limits(section: GuardSection) -> GuardLimits:
    """The limits ``[manager.guard]`` sets."""
    return GuardLimits(
        first_bytes_timeout=section.first_bytes_timeout,
        max_per_source=section.max_per_source,
        min_penalty=section.min_penalty,
        max_penalty=section.max_penalty,
        trusted=tuple(section.trusted),
        log_interval=section.log_interval,
    )


def _host(address: str) -> str:
    """The host of ``host:port`` or ``[v6]:port``."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    return address.rpartition(":")[0] if address.count(":") == 1 else address


class Handshake:
    """One connection's handshake as its listener's guard counts it."""

    def __init__(
        self,
        guard: HandshakeGuard,
        host: str,
        *,
        over_limit: bool,
        heard: Callable[[], bool] | None,
        drop: Callable[[], None] | None,
    ) -> None:
        self._guard = guard
        self.host = host
        self.over_limit = over_limit
        """True if this connection is refused: the adapter drops it (it stays counted until
        it ends, as any other)."""
        self.counted = True
        self.failed = False
        self._heard = heard
        self._drop = drop
        self._timers: list[asyncio.TimerHandle] = []

    @property
    def heard(self) -> bool:
        """Whether the peer has said anything (True where the adapter cannot tell)."""
        return self._heard is None or self._heard()

    def settle(self) -> None:
        """This handshake is no longer in progress (it succeeded); idempotent."""
        if self.counted:
            self.counted = False
            self._guard._forget(self)

    def stop_timer(self) -> None:
        """The handshake has finished in time: its timeouts will not fire."""
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()

    def end(self) -> None:
        """The connection is gone: stop the timers and the count. Unsettled, it failed."""
        self.stop_timer()
        if self.counted:
            self.counted = False
            self._guard._forget(self)
            if not self.over_limit:
                self._guard._failed(self)

    def evict(self, why: str) -> None:
        """Drop the connection (the guard's decision)."""
        self._guard._count(why)
        if self._drop is not None:
            self._drop()


class HandshakeGuard:
    """Counts, caps, times and penalizes the handshakes in progress on one listener."""

    def __init__(
        self,
        settings: GuardSettings,
        log: logging.Logger,
        limits: GuardLimits | None = None,
        *,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.settings = settings
        self.limits = limits or GuardLimits()
        self._log = log  # the adapter's logger, so that its warnings keep their name
        self._clock = clock
        self._active: OrderedDict[Handshake, None] = OrderedDict()
        self._per_host: dict[str, int] = {}
        self._penalty: dict[str, tuple[float, float]] = {}
        """host -> (seconds of penalty, when they were counted)."""
        self._trusted = [ipaddress.ip_network(n, strict=False) for n in self.limits.trusted]
        self._dropped: dict[str, int] = {}
        self._last_log: float | None = None
        self._flush: asyncio.TimerHandle | None = None
        self.dropped_total = 0
        """Connections the guard dropped or refused so far."""

    @property
    def in_progress(self) -> int:
        return len(self._active)

    def _now(self) -> float:
        return self._clock() if self._clock is not None else asyncio.get_running_loop().time()

    def _is_trusted(self, host: str) -> bool:
        if not self._trusted:
            return False
        try:
            addr = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(addr in net for net in self._trusted)

    def _refusal(self, host: str, now: float) -> str | None:
        """Why a new connection from ``host`` is refused whatever else is in progress."""
        if self._is_trusted(host):
            return None
        if self._owed(host, now) > self.limits.min_penalty:
            return "penalized address"
        if self._per_host.get(host, 0) >= self.limits.max_per_source:
            return "too many from one address"
        return None

    def broke_protocol(self, device: str) -> None:
        """The session of ``device`` (its identity's fingerprint) ended because the device
        broke the protocol: it owes ``BROKEN_PENALTY`` seconds more."""
        now = self._now()
        owed = min(self._owed(device, now) + BROKEN_PENALTY, self.limits.max_penalty)
        self._penalty[device] = (owed, now)

    def shuts_out(self, device: str) -> bool:
        """Whether ``device`` (an identity's fingerprint) is refused for now, having broken
        the protocol again and again (counted)."""
        if (
            device not in self._penalty
            or self._owed(device, self._now()) <= self.limits.min_penalty
        ):
            return False
        self._count("penalized device")
        return True

    def refuses(self, host: str) -> bool:
        """Whether a connection from ``host`` (an address, no port) is refused at once: a
        penalized address, or one at its per-source cap. A refusal is counted as
        :meth:`begin` counts one. For a listener that asks this as it accepts a socket,
        before building anything for it (``AcceptGate``)."""
        why = self._refusal(host, self._now())
        if why is None:
            return False
        self._count(why)
        return True

    def begin(
        self,
        address: str,
        on_timeout: Callable[[], None] | None = None,
        *,
        heard: Callable[[], bool] | None = None,
        drop: Callable[[], None] | None = None,
        deadline: bool = True,
    ) -> Handshake:
        """Count a new connection from ``address``. If it is refused, the handshake returned
        is ``over_limit``. ``heard`` tells whether the peer has spoken yet and ``drop``
        cuts the connection: given both, the guard may drop it to make room and, unless
        ``deadline`` is False, at the first-bytes deadline. ``on_timeout``, if given, is
        called once ``handshake_timeout`` has passed unless :meth:`Handshake.stop_timer` or
        :meth:`Handshake.end` comes first."""
        host = _host(address)
        why = self._refusal(host, self._now())
        if why is None and len(self._active) >= self.settings.max_unauthenticated:
            silent = next((h for h in self._active if not h.heard), None)
            if silent is not None:
                silent.evict("silent, to make room")
            else:
                why = "too many handshakes in progress"
        handshake = Handshake(self, host, over_limit=why is not None, heard=heard, drop=drop)
        self._active[handshake] = None
        self._per_host[host] = self._per_host.get(host, 0) + 1
        if why is not None:
            self._count(why)
            return handshake
        loop = asyncio.get_running_loop()
        if heard is not None and drop is not None and deadline:
            handshake._timers.append(
                loop.call_later(self.limits.first_bytes_timeout, self._deadline, handshake)
            )
        if on_timeout is not None:
            handshake._timers.append(loop.call_later(self.settings.handshake_timeout, on_timeout))
        return handshake

    def _owed(self, host: str, now: float) -> float:
        seconds, at = self._penalty.get(host, (0.0, now))
        return max(0.0, seconds - (now - at))

    def _deadline(self, handshake: Handshake) -> None:
        if handshake.counted and not handshake.heard:
            handshake.evict("silent past the first-bytes deadline")

    def _forget(self, handshake: Handshake) -> None:
        self._active.pop(handshake, None)
        left = self._per_host.get(handshake.host, 1) - 1
        if left > 0:
            self._per_host[handshake.host] = left
        else:
            self._per_host.pop(handshake.host, None)

    def _failed(self, handshake: Handshake) -> None:
        handshake.failed = True
        host = handshake.host
        if self._is_trusted(host):
            return
        now = self._now()
        penalty = FAILED_PENALTY if handshake.heard else SILENT_PENALTY
        owed = min(self._owed(host, now) + penalty, self.limits.max_penalty)
        self._penalty[host] = (owed, now)
        if len(self._penalty) > 100_000:
            self._penalty = {h: p for h, p in self._penalty.items() if self._owed(h, now) > 0}

    def _count(self, why: str) -> None:
        """Count one dropped or refused connection; log the counts once per interval."""
        self.dropped_total += 1
        self._dropped[why] = self._dropped.get(why, 0) + 1
        now = self._now()
        if self._last_log is not None and now - self._last_log < self.limits.log_interval:
            if self._flush is None:  # say it at the end of the interval, if no one else does
                wait = self._last_log + self.limits.log_interval - now
                self._flush = asyncio.get_running_loop().call_later(wait, self._report)
            return
        self._report()

    def _report(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if not self._dropped:
            return
        now = self._now()
        counts = ", ".join(f"{n} {reason}" for reason, n in sorted(self._dropped.items()))
        since = "" if self._last_log is None else f" in the last {now - self._last_log:.0f}s"
        self._log.warning("flood guard dropped connections%s: %s", since, counts)
        self._dropped.clear()
        self._last_log = now


class _Gated(asyncio.Protocol):
    """An accepted socket before any SSH is built for it: refused by the guard there and
    then, or handed to the listener's own protocol (asyncssh's connection)."""

    def __init__(self, guard: HandshakeGuard, factory: Callable[[str, int], Any]) -> None:
        self._guard = guard
        self._factory = factory

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        if peer and self._guard.refuses(str(peer[0])):
            cast(asyncio.Transport, transport).abort()
            return
        protocol = self._factory("", 0)
        transport.set_protocol(protocol)
        protocol.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # refused; an admitted socket's end goes to its own protocol


class AcceptGate:
    """Where an asyncssh listener accepts its sockets (passed as its ``tunnel``, an object
    with ``create_server``): a socket from a penalized address, or from one at its
    per-source cap, is refused as it is accepted, before asyncssh builds a connection for
    it, so that turning a flood away costs the manager what accepting a socket costs (a
    third of what building and tearing down an SSH connection does). Every other socket is
    handed to asyncssh unchanged, and the guard counts its handshake as before."""

    def __init__(self, guard: HandshakeGuard) -> None:
        self._guard = guard

    async def create_server(
        self, session_factory: Callable[[str, int], Any], listen_host: str, listen_port: int
    ) -> asyncio.Server:
        loop = asyncio.get_running_loop()
        return await loop.create_server(
            lambda: _Gated(self._guard, session_factory),
            listen_host or None,
            listen_port,
            reuse_address=True,
            backlog=LISTEN_BACKLOG,
        )
