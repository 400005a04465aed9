"""The manager's flood guard for call-home handshakes, one per listener.

A manager accepts any socket on its call-home ports, so a flood of connections that never
finish their handshake (a reboot storm, a scan, an attack) could hold it up. Every listener
(reverse-ssh, turn, reverse-tls and SNMP over TLS) keeps one :class:`HandshakeGuard`:

- it counts the handshakes in progress and drops a connection that would make them more
  than ``max_unauthenticated`` (logged as a warning, no event: nothing is known of the peer);
- it times a handshake out after ``handshake_timeout`` seconds where the adapter gives it a
  callback (``begin(address, on_timeout)``).

What "in progress" covers is the adapter's to say, by when it calls :meth:`Handshake.settle`:
reverse-ssh and turn settle once SSH authentication completes (their timer runs on until the
session is ready), reverse-tls once the session is ready or has failed. Reverse-tls runs its
whole handshake in one task and bounds it with ``asyncio.timeout``, so it asks for no timer.

Both settings are read when a connection arrives, so a listener's settings may be changed
while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol


class GuardSettings(Protocol):
    """The two fields of a listener's settings the guard reads."""

    handshake_timeout: float
    max_unauthenticated: int


class Handshake:
    """One connection's handshake as its listener's guard counts it."""

    def __init__(
        self, guard: HandshakeGuard, *, over_limit: bool, timer: asyncio.TimerHandle | None
    ) -> None:
        self._guard = guard
        self.over_limit = over_limit
        """True if this connection is one too many: the adapter drops it (it stays counted
        until it is settled, as any other)."""
        self.counted = True
        self._timer = timer

    def settle(self) -> None:
        """This handshake is no longer in progress (done, failed or gone); idempotent."""
        if self.counted:
            self.counted = False
            self._guard.in_progress -= 1

    def stop_timer(self) -> None:
        """The handshake has finished in time: its timeout will not fire."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def end(self) -> None:
        """The connection is gone: stop the timer and the count."""
        self.stop_timer()
        self.settle()


class HandshakeGuard:
    """Counts, caps and times the handshakes in progress on one listener."""

    def __init__(self, settings: GuardSettings, log: logging.Logger) -> None:
        self.settings = settings
        self.in_progress = 0
        self._log = log  # the adapter's logger, so that its warnings keep their name

    def begin(self, address: str, on_timeout: Callable[[], None] | None = None) -> Handshake:
        """Count a new connection from ``address``. Over the cap, the handshake returned is
        ``over_limit`` (and a warning is logged); otherwise ``on_timeout``, if given, is
        called once ``handshake_timeout`` has passed unless :meth:`Handshake.stop_timer`
        or :meth:`Handshake.end` comes first."""
        self.in_progress += 1
        over_limit = self.in_progress > self.settings.max_unauthenticated
        timer = None
        if over_limit:
            self._log.warning("too many handshakes in progress; dropping %s", address)
        elif on_timeout is not None:
            timer = asyncio.get_running_loop().call_later(
                self.settings.handshake_timeout, on_timeout
            )
        return Handshake(self, over_limit=over_limit, timer=timer)


__all__ = ["GuardSettings", "Handshake", "HandshakeGuard"]
