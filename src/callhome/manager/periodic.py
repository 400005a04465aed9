"""Ending a periodic device's session once there is nothing left to do (the seed, section 4).

A device on a periodic schedule calls home, is served, and waits for the manager to end the
session with ``<close-session>``; then it calls again at its next ``anchor + n * period``
(an ungraceful end makes it redial at once, and its own ``idle-timeout`` drops a connection
nobody uses). :class:`PeriodicSessions` watches each NETCONF session of a device whose stored
schedule is periodic (from connect, or from when the schedule becomes known or turns
periodic while it is connected) and ends it once it has been idle for ``periodic_linger``
seconds. Idle means, all at once: no job running or claimable now (nor just submitted), no
NETCONF reply awaited (a schedule read, a subscription), the notification replay complete
or not awaited, and no terminal, command or forward of an operator open. Anything done in
the wait starts it again. A replay whose ``replayComplete`` never comes stops counting after
``linger + rpc_timeout`` seconds. A device switched to persistent is left alone from then on;
connections that carry no NETCONF (SNMP over TLS) are never watched.

:class:`Linger` is the decision alone (time passed in), polled by one task per session.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Final

from callhome.clock import SYSTEM, Clock
from callhome.net.session import DeviceSession
from callhome.storage import Device, ScheduleKind

__all__ = ["EVENT_KIND", "REASON", "Activity", "Linger", "PeriodicSessions"]

log = logging.getLogger(__name__)

EVENT_KIND: Final = "session-ended"
"""The event recorded when the manager ends a periodic device's session."""
REASON: Final = "periodic: nothing left to do"
TICK_RANGE: Final = (0.05, 1.0)
"""Seconds between two looks at a watched session: a tenth of the linger, within this
range, so a fleet of periodic devices online together costs few wake-ups."""


@dataclass(frozen=True, slots=True)
class Activity:
    """What a session is doing, as seen at one instant."""

    busy: bool
    """A job runs or may be claimed now, a reply is awaited, or an operator channel is open."""
    replaying: bool
    """A notification replay was asked for and its ``replayComplete`` has not come."""
    done: int
    """A counter that grows with each thing done (jobs claimed): a change restarts the wait."""


class Linger:
    """Whether to end a session now: idle for ``linger`` seconds without a break.

    ``replay_cap``: seconds after ``started`` from which an unfinished replay no longer
    keeps the session busy.
    """

    def __init__(self, linger: float, replay_cap: float, started: float) -> None:
        self.linger = linger
        self.replay_cap = replay_cap
        self.started = started
        self.idle_since: float | None = None
        self._done: int | None = None

    def observe(self, now: float, activity: Activity) -> bool:
        """Take one look; True when the session should be ended now."""
        replaying = activity.replaying and now - self.started < self.replay_cap
        changed = self._done is not None and activity.done != self._done
        self._done = activity.done
        if activity.busy or replaying:
            self.idle_since = None
            return False
        if self.idle_since is None or changed:
            self.idle_since = now
        return now - self.idle_since >= self.linger


Probe = Callable[[DeviceSession], Activity]
Current = Callable[[str], Device | None]
Record = Callable[[str, DeviceSession, Mapping[str, Any]], Awaitable[None]]
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


def is_periodic(device: Device | None) -> bool:
    schedule = None if device is None else device.schedule
    return schedule is not None and schedule.kind is ScheduleKind.PERIODIC


class PeriodicSessions:
    """Ends the sessions of periodic devices once idle (see the module)."""

    def __init__(
        self,
        linger: float | None,
        rpc_timeout: float,
        probe: Probe,
        current: Current,
        record: Record,
        spawn: Spawn,
        *,
        clock: Clock = SYSTEM,
        tick: float | None = None,
    ) -> None:
        self.linger = linger
        self._replay_cap = (linger or 0.0) + rpc_timeout
        self._probe = probe
        self._current = current
        self._record = record
        self._spawn = spawn
        self._clock = clock
        low, high = TICK_RANGE
        self._tick = tick if tick is not None else min(high, max(low, (linger or 0.0) / 10))
        self._watched: dict[str, DeviceSession] = {}
        """Per fingerprint: the session a task watches now."""

    @property
    def enabled(self) -> bool:
        return self.linger is not None and self.linger >= 0

    def watch(self, session: DeviceSession, device: Device | None) -> None:
        """A session is up, or its device's schedule changed: watch it if periodic."""
        if not self.enabled or not session.carries_netconf or session.closed.is_set():
            return
        if not is_periodic(device) or self._watched.get(session.fingerprint) is session:
            return
        self._watched[session.fingerprint] = session
        self._spawn(self._run(session))

    async def _run(self, session: DeviceSession) -> None:
        assert self.linger is not None
        linger = Linger(self.linger, self._replay_cap, self._clock.monotonic())
        try:
            while not session.closed.is_set() and not session.netconf.closed:
                if not is_periodic(self._current(session.fingerprint)):
                    log.info("device %s: no longer periodic; its session is kept", session.name)
                    return
                if linger.observe(self._clock.monotonic(), self._probe(session)):
                    await self._end(session)
                    return
                await self._clock.sleep(self._tick)
        finally:
            if self._watched.get(session.fingerprint) is session:
                del self._watched[session.fingerprint]

    async def _end(self, session: DeviceSession) -> None:
        log.info("device %s: periodic and nothing left to do; ending its session", session.name)
        await self._record(EVENT_KIND, session, {"reason": REASON})
        await session.close(graceful=True)
