"""What the manager knows of each device's call-home schedule, and when it next expects it.

The schedule is the device's own configuration (``callhome.proto.schedule``); the manager
keeps a copy in the device's record (``Device.schedule``) and learns it three ways:

- **on connect**, with one ``<get-config>`` (subtree filter on ``call-home``), only when the
  stored copy is unknown or the device cannot tell of later changes (no ``:notification``,
  or the manager does not subscribe), and the device implements ietf-netconf-server (its
  hello or its YANG library: ``callhome.manager.modules``). A device whose copy is known and
  that sends notifications costs no round trip at all on connect.
- **from a job** that succeeded: a ``schedule`` job (``callhome.manager.schedule_job``) is
  learned from what it set; any other successful job whose XML names the module re-reads it.

Of the device's ``netconf-client`` entries, the one whose endpoint is the address the
connection reached (or one of the manager's public names) is this manager's
(``callhome.proto.call_home.pick_client``); a device with a single entry is taken at its
word.
- **from a netconf-config-change notification** (RFC 6470) of running whose edit targets
  touch ``netconf-server`` (or ``/``): it is re-read on the session the notification came
  on. A notification replayed after the device was away does the same. If that read fails,
  the stored copy is set unknown, so that the next connect reads it.

Reads may overlap with each other and with jobs: each learning takes a number, and a read
whose number is no longer the device's latest is dropped, so the newest wins.

:func:`next_expected` says when the device is next expected: now (connected), reconnecting
(persistent, since it left), at ``anchor + n * period`` after it left (periodic), or overdue
when that time passed more than ``OVERDUE_GRACE`` ago.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from lxml import etree

from callhome.errors import RpcError, RpcErrorInfo, SessionClosed
from callhome.manager.modules import ModuleCatalog
from callhome.manager.schedule_job import KIND as SCHEDULE_JOB
from callhome.manager.schedule_job import MODULE, connection_type_of
from callhome.net.session import DeviceSession
from callhome.proto.call_home import FILTER, NoClientMatch, pick_client, read_clients
from callhome.proto.netconf.capabilities import ModuleSet
from callhome.proto.schedule import (
    NS,
    ConnectionType,
    Periodic,
    next_periodic_dial,
    read_connection_type,
)
from callhome.storage import Device, DeviceStatus, Schedule, ScheduleKind, Store
from callhome.storage.jobs import Job, JobState

__all__ = [
    "EVENT_KIND",
    "OVERDUE_GRACE",
    "NextExpected",
    "NextState",
    "ScheduleWatcher",
    "config_change_touches_schedule",
    "next_expected",
    "offers_schedule",
    "schedule_from",
]

log = logging.getLogger(__name__)

OVERDUE_GRACE: Final = 60.0
"""Seconds past its expected time before a periodic device is called overdue: room for its
back-off, a slow handshake and a modest clock skew between device and manager."""
EVENT_KIND: Final = "schedule-learned"
"""The event recorded when the stored schedule of a device changes."""
NOTIFICATION_CAPABILITY: Final = "urn:ietf:params:netconf:capability:notification:1.0"
NS_NC_NOTIFICATIONS: Final = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
_FIRST_STEP: Final = re.compile(r"/\s*(?:([\w.-]+):)?([\w.-]+)")


class NextState(StrEnum):
    CONNECTED = "connected"
    """Online now (``time``: since when)."""
    RECONNECTING = "reconnecting"
    """Persistent and away: it redials at once (``time``: since when it is away)."""
    EXPECTED = "expected"
    """Periodic and away: expected at ``time``."""
    OVERDUE = "overdue"
    """Periodic and expected at ``time``, more than the grace period ago."""


@dataclass(frozen=True, slots=True)
class NextExpected:
    state: NextState
    time: float
    overdue_by: float | None = None
    """For OVERDUE: seconds since ``time``."""


def offers_schedule(modules: ModuleSet) -> bool:
    """Whether a device implements ietf-netconf-server (any revision)."""
    return modules.implemented(MODULE) is not None


def schedule_from(kind: ConnectionType, since: float) -> Schedule:
    """The stored form of a connection type seen to take effect at ``since``."""
    if isinstance(kind, Periodic):
        return Schedule(
            kind=ScheduleKind.PERIODIC,
            since=since,
            period=kind.period,
            anchor=kind.anchor,
            idle_timeout=kind.idle_timeout,
        )
    return Schedule(kind=ScheduleKind.PERSISTENT, since=since)


def next_expected(device: Device, now: float, grace: float = OVERDUE_GRACE) -> NextExpected | None:
    """When ``device`` is next expected to call (None: not approved, or unknown schedule).

    An away periodic device is expected at the first ``anchor + n * period`` at or after it
    left (``status_since``), the device's own rule after a graceful end; an anchorless
    schedule counts from ``Schedule.since``.
    """
    if not device.approved:
        return None
    if device.status is DeviceStatus.ONLINE:
        return NextExpected(NextState.CONNECTED, device.status_since)
    schedule = device.schedule
    if schedule is None:
        return None
    left = device.status_since
    if schedule.kind is ScheduleKind.PERSISTENT or not schedule.period:
        return NextExpected(NextState.RECONNECTING, left)
    anchor = schedule.since if schedule.anchor is None else schedule.anchor
    when = next_periodic_dial(left, anchor, schedule.period)
    if now - when > grace:
        return NextExpected(NextState.OVERDUE, when, now - when)
    return NextExpected(NextState.EXPECTED, when)


def config_change_touches_schedule(detail: Mapping[str, Any]) -> bool:
    """Whether a recorded notification (``NetconfNotifications`` detail) is a
    netconf-config-change of running that may have changed the call-home schedule."""
    if detail.get("name") != "netconf-config-change" or detail.get("namespace") not in (
        NS_NC_NOTIFICATIONS,
        "",
    ):
        return False
    if detail.get("truncated"):
        return True
    try:
        top = etree.fromstring(
            str(detail.get("xml", "")).encode(),
            etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False),
        )
    except etree.XMLSyntaxError:
        return True
    datastore = top.findtext(f"{{{NS_NC_NOTIFICATIONS}}}datastore")
    if (datastore or "running").strip() != "running":
        return False
    targets = top.findall(f"{{{NS_NC_NOTIFICATIONS}}}edit/{{{NS_NC_NOTIFICATIONS}}}target")
    return not targets or any(_targets_schedule(t) for t in targets)


def _targets_schedule(target: etree._Element) -> bool:
    path = (target.text or "").strip()
    if path in ("", "/"):
        return True
    step = _FIRST_STEP.match(path)
    if step is None:
        return True
    prefix, name = step.groups()
    if name != "netconf-server":
        return False
    return prefix is None or target.nsmap.get(prefix) in (NS, None)


Updated = Callable[[Device, Schedule | None, str], Awaitable[None]]
"""Called after a new schedule is stored: (device record, schedule, how it was learned)."""
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


Dialled = Callable[[DeviceSession], list[tuple[str, int]]]
"""The (host, port) places a session's device may have dialled to reach this manager."""


class ScheduleWatcher:
    """Keeps ``Device.schedule`` up to date (see the module)."""

    def __init__(
        self,
        store: Store,
        current: Callable[[str], Device | None],
        # the device record the manager holds, by fingerprint or name
        updated: Updated,
        spawn: Spawn,
        *,
        catalog: ModuleCatalog | None = None,
        dialled: Dialled = lambda session: [],
        notified: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._current = current
        self._updated = updated
        self._spawn = spawn
        self._catalog = catalog or ModuleCatalog()
        self._dialled = dialled
        self._notified = notified
        """Whether the manager subscribes to devices' notifications (then changes are told)."""
        self._clock = clock
        self._turn: dict[str, int] = {}
        self._counter = 0
        self._storing = asyncio.Lock()
        """One store at a time: a read and a job learning the same schedule together would
        both see the old copy and record the change twice."""
        self.reads = 0
        """get-config round trips made so far (for benchmarks and tests)."""

    def _take_turn(self, fingerprint: str) -> int:
        self._counter += 1
        self._turn[fingerprint] = self._counter
        return self._counter

    def session_ready(self, session: DeviceSession, device: Device) -> None:
        """A device connected: read its schedule if that is needed (see the module)."""
        told = self._notified and NOTIFICATION_CAPABILITY in session.capabilities
        if device.schedule is not None and told:
            return
        self._spawn(self._connected(session))

    async def _connected(self, session: DeviceSession) -> None:
        if not offers_schedule(await self._catalog.modules(session)):
            return
        await self._read(session, session.connected_at, "connect", forget_on_failure=False)

    def notification(self, session: DeviceSession, detail: Mapping[str, Any]) -> None:
        """A notification was recorded: re-read the schedule if it may have changed."""
        if config_change_touches_schedule(detail):
            self._spawn(self._read(session, self._clock(), "notification", forget_on_failure=True))

    def job_finished(self, job: Job, session: DeviceSession | None) -> None:
        """A job ended: learn the schedule from it if it succeeded in setting one."""
        if job.state is not JobState.SUCCEEDED:
            return
        device = self._current(session.fingerprint if session is not None else job.device)
        if job.kind == SCHEDULE_JOB:
            payload = dict(job.payload)
            if payload.get("connection") == "periodic" and payload.get("idle_timeout") is None:
                # the device's own default applies: read what it is
                if session is not None and not session.closed.is_set():
                    self._spawn(self._read(session, job.updated, "job", forget_on_failure=True))
                return
            if device is not None:
                kind = connection_type_of(payload)
                turn = self._take_turn(device.fingerprint)
                self._spawn(self._learn(device.fingerprint, kind, job.updated, "job", turn))
            return
        if job.kind not in ("netconf", "netconf-group"):
            return
        texts = [str(job.payload.get("operation", ""))] + [
            str(e) for e in job.payload.get("edits", ())
        ]
        if not any(NS in text for text in texts):
            return
        if session is not None and not session.closed.is_set():
            self._spawn(self._read(session, job.updated, "job", forget_on_failure=True))

    def _ours(self, session: DeviceSession, data: etree._Element) -> str | None:
        """The name of the device's call-home client that is this manager (None: no entry;
        "" for the first and only one when no entry fits)."""
        clients = read_clients(data)
        if not clients:
            return None
        try:
            return pick_client(
                clients,
                transport=session.orientation.model_transport,
                dialled=self._dialled(session),
            ).name
        except NoClientMatch as exc:
            if len(clients) == 1:
                return clients[0].name
            log.info("device %s: call-home schedule not learned: %s", session.name, exc)
            raise

    async def _read(
        self, session: DeviceSession, since: float, source: str, *, forget_on_failure: bool
    ) -> None:
        fingerprint = session.fingerprint
        turn = self._take_turn(fingerprint)
        self.reads += 1
        try:
            reply = await session.netconf.get_config("running", FILTER)
        except (RpcError, SessionClosed, TimeoutError) as exc:
            log.info("device %s: call-home schedule not read: %s", session.name, exc)
            if forget_on_failure and self._turn.get(fingerprint) == turn:
                await self._store_schedule(fingerprint, None, source)
            return
        errors: list[RpcErrorInfo] = []
        data = reply.data if reply.data is not None else etree.Element("data")
        try:
            client = self._ours(session, data)
        except NoClientMatch:
            return
        kind = read_connection_type(data, errors, client=client)
        if errors:
            log.warning("device %s: its call-home schedule is invalid: %s", session.name, errors)
            return
        await self._learn(fingerprint, kind, since, source, turn)

    async def _learn(
        self, fingerprint: str, kind: ConnectionType, since: float, source: str, turn: int
    ) -> None:
        if self._turn.get(fingerprint) != turn:
            return  # a later learning of this device is under way or done
        await self._store_schedule(fingerprint, schedule_from(kind, since), source)

    async def _store_schedule(
        self, fingerprint: str, schedule: Schedule | None, source: str
    ) -> None:
        async with self._storing:
            device = self._current(fingerprint)
            if device is None:
                return  # forgotten meanwhile
            if schedule is None and device.schedule is None:
                return
            if schedule is not None and schedule.same_as(device.schedule):
                return
            device = await self._store.set_schedule(fingerprint, schedule)
            await self._updated(device, schedule, source)
