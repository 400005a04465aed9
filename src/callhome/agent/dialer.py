"""The device's call-home loop: dial the managers in turn, forever; serve each connection
until it ends; then dial again as the schedule says.

One :class:`Dialer` per device. Each turn of :meth:`Dialer.run`:

1. The reconnect plan (``callhome.proto.reconnect``: start-with, max-attempts per endpoint,
   back-off with jitter) says which endpoint, and after how long; :meth:`Dialer.wake` cuts a
   back-off short (an SNMP notification to send at once), no closer than ``WAKE_SPACING``
   to the last dial.
2. The endpoint is dialled through its orientation (``callhome.net.dial``) within
   ``max_wait``; a failure is logged with a reason an operator can act on
   (``callhome.net.failures``) and the plan moves on.
3. While connected, the connection type of the endpoint's call-home client
   (``callhome.agent.schedule``) applies: a periodic one drops the connection after its
   idle-timeout without use. When the last NETCONF session ends with close-session, the
   device closes the connection (it exists for that session).
4. After an end the device chose (close-session, idle-timeout), a periodic device waits for
   its next ``anchor + n * period`` (re-planned when the schedule changes, cut short by a
   wake); a persistent one, or any connection that was lost, dials again at once.

Time comes from a :class:`~callhome.clock.Clock`, so tests drive every timer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from callhome.agent.netconf_service import NetconfService
from callhome.agent.schedule import ScheduleState
from callhome.clock import SYSTEM, Clock
from callhome.config import Endpoint
from callhome.net.dial import DIAL_ERRORS, CallHomeConnection, DeviceTransports, address_of
from callhome.net.failures import dial_failure
from callhome.proto.reconnect import ReconnectPlan
from callhome.proto.schedule import Periodic, next_dial

__all__ = ["CLOSE_GRACE", "WAKE_SPACING", "Dialer"]

log = logging.getLogger(__name__)

WAKE_SPACING = 1.0
"""Least time, in seconds, between two dials that a notification woke early."""

CLOSE_GRACE = 0.5
"""Seconds the device leaves the connection up after a close-session, so that the reply
reaches the manager before it hangs up."""


class Dialer:
    """Calls home, serves, and calls again (see the module)."""

    def __init__(
        self,
        endpoints: Sequence[Endpoint],
        transports: DeviceTransports,
        *,
        plan: ReconnectPlan,
        schedule: ScheduleState,
        netconf: NetconfService,
        activity: Callable[[], float],
        identity: str,
        max_wait: float,
        clock: Clock = SYSTEM,
    ) -> None:
        self._endpoints = list(endpoints)
        self._transports = transports
        self.plan = plan
        self._schedule = schedule
        self._netconf = netconf
        self._activity = activity
        """``clock.monotonic()`` when a manager last used the device."""
        self._identity = identity
        self._max_wait = max_wait
        self._clock = clock
        self.connection: CallHomeConnection | None = None
        self.connected = asyncio.Event()
        self.connections_made = 0
        self._wake = asyncio.Event()
        self._replan = asyncio.Event()
        self._last_dial = -WAKE_SPACING
        self._session_done = False
        """The connection's work is done (close-session, or idle): a periodic device waits."""
        self._ended_by = ""
        """Why the device itself ended the connection ("": it did not)."""
        self._loop: asyncio.AbstractEventLoop | None = None
        schedule.on_change = self._schedule_changed
        netconf.add_session_end_listener(self._session_ended)

    @property
    def addresses(self) -> list[tuple[str, int]]:
        """(host, port) of each endpoint, in order."""
        return [address_of(e) for e in self._endpoints]

    def wake(self) -> None:
        """Dial now if the device is away (an ``immediate`` notification waits)."""
        if self.connection is None:
            self._wake.set()

    def _soon(self, delay: float, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the dialer's loop after ``delay``, from any thread."""
        loop = self._loop
        if loop is None:
            return
        loop.call_soon_threadsafe(loop.call_later, delay, callback)

    def _schedule_changed(self) -> None:
        self._soon(0.0, self._replan.set)

    def _session_ended(self, session_id: int, reason: str) -> None:
        """When the last NETCONF session on the connection ends with close-session, close
        the connection (RFC 8071: it exists for the session), and dial again as the schedule
        says. A session that ends otherwise leaves the connection to its keepalives."""
        conn = self.connection
        if reason != "closed" or conn is None or self._netconf.session_ids:
            return
        self._session_done = True
        self._ended_by = "the manager closed the session"
        log.info("NETCONF session %d: %s; closing the connection", session_id, self._ended_by)
        self._soon(CLOSE_GRACE, conn.abort)

    async def _watch_idle(self, conn: CallHomeConnection) -> None:
        """Drop ``conn`` when a periodic schedule's idle-timeout passes without use."""
        self._netconf.last_rpc = self._clock.monotonic()  # the connection itself counts
        while True:
            self._replan.clear()
            kind = self._schedule.kind
            remaining: float | None = None
            if isinstance(kind, Periodic) and kind.idle_timeout > 0:
                remaining = self._activity() + kind.idle_timeout - self._clock.monotonic()
                if remaining <= 0:
                    self._session_done = True
                    self._ended_by = f"not used for {kind.idle_timeout:g}s (idle-timeout)"
                    log.info("%s; hanging up until the next period", self._ended_by)
                    conn.abort()
                    return
            await self._clock.wait([self._replan], remaining)

    async def _await_period(self) -> None:
        """After a graceful end, wait for the next periodic boundary (re-planned when the
        schedule changes; cut short by :meth:`wake`)."""
        while True:
            self._replan.clear()
            now = self._clock.time()
            kind = self._schedule.kind
            when = next_dial(kind, now=now, graceful=True, applied_at=self._schedule.applied_at)
            if when <= now:
                return
            log.info("next call home in %.1fs", when - now)
            await self._clock.wait([self._replan, self._wake], when - now)
            if self._wake.is_set():
                self._wake.clear()
                return
            if not self._replan.is_set():
                return

    async def _pause(self, delay: float) -> None:
        """The back-off before the next dial, cut short by :meth:`wake`."""
        await self._clock.wait([self._wake], delay)
        if self._wake.is_set():
            self._wake.clear()
            rest = self._last_dial + WAKE_SPACING - self._clock.monotonic()
            if rest > 0:
                await self._clock.sleep(min(rest, delay))

    async def _connect(self, index: int) -> CallHomeConnection | None:
        endpoint = self._endpoints[index]
        host, port = address_of(endpoint)
        self._last_dial = self._clock.monotonic()
        try:
            return await asyncio.wait_for(self._transports.dial(endpoint), self._max_wait)
        except DIAL_ERRORS as exc:
            why = dial_failure(
                exc,
                where=f"{host}:{port}",
                identities=self._transports.identities(endpoint, self._identity),
                max_wait=self._max_wait,
            )
            log.info("call home to %s:%d failed: %s", host, port, why)
            return None

    async def run(self) -> None:
        """Dial and serve until cancelled: a device never gives up."""
        self._loop = asyncio.get_running_loop()
        while True:
            attempt = self.plan.next_attempt()
            if attempt.delay:
                await self._pause(attempt.delay)
            conn = await self._connect(attempt.endpoint)
            if conn is None:
                self.plan.failed()
                continue
            await self._serve(attempt.endpoint, conn)

    async def _serve(self, index: int, conn: CallHomeConnection) -> None:
        host, port = address_of(self._endpoints[index])
        self.plan.connected(index)
        self._schedule.client = self._endpoints[index].client
        self._ended_by = ""
        self.connection = conn
        self.connections_made += 1
        self.connected.set()
        self._wake.clear()
        self._session_done = False
        log.info("called home to %s:%d", host, port)
        idle = asyncio.create_task(self._watch_idle(conn))
        try:
            await conn.wait_closed()
        finally:
            idle.cancel()
            self.connected.clear()
            self.connection = None
            conn.abort()
        self.plan.disconnected()
        if self._session_done:
            periodic = isinstance(self._schedule.kind, Periodic)
            after = "waiting for the next period" if periodic else "calling again"
            log.info("connection to %s:%d ended: %s; %s", host, port, self._ended_by, after)
            await self._await_period()
        else:
            log.info("connection to %s:%d lost; redialing", host, port)
