"""NETCONF notifications from devices (RFC 5277), stored as events, none lost while away.

On every connection of a device whose hello offers ``:notification``, the manager subscribes
to its default stream (``NETCONF``). The subscription's ``startTime`` is the eventTime of the
newest notification already stored for that device, so that the device replays from its log
what it sent while the device was away; the first time (nothing stored) there is no
startTime, unless ``[notifications] lookback`` asks for that many seconds of replay. A device
that refuses the startTime (no replay) is subscribed again without one.

The subscription is made right after the device's job worker started (queued jobs are not
held back by it; with ``:interleave`` both share the session), so a job may run before the
first notification arrives.

Each notification is recorded as an event of kind ``netconf-notification``: the device's
name, and in the detail its ``eventTime``, the ``name`` and ``namespace`` of its top element,
its content as ``xml`` (cut at ``max_content`` bytes; ``truncated`` then says so) and a
``digest`` (SHA-256 of the exclusive canonical XML of the content). A replay starts at the
last stored eventTime, so that notification comes again: one whose eventTime and digest are
already stored is skipped. ``replayComplete`` and ``notificationComplete`` are not recorded.

Notifications are recorded in arrival order by one task per session; a device's new session
first waits (up to ``PREVIOUS_WAIT``) for its previous session's task to finish, so that its
startTime is the true last one. If more than
``MAX_QUEUED`` wait (the store is slower than the device), the connection is closed rather
than any dropped: the device calls home again and the replay brings them back. So it is
when one cannot be recorded (the store fails), rather than none being recorded after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime
from typing import Any, Final

from lxml import etree

from callhome.clock import SYSTEM, Clock
from callhome.config import ManagerNotificationsSection
from callhome.errors import RpcError, SessionClosed
from callhome.net.session import DeviceSession
from callhome.proto.netconf import Notification, op_create_subscription
from callhome.storage import Store

__all__ = ["EVENT_KIND", "NOTIFICATION_CAPABILITY", "NetconfNotifications", "describe"]

log = logging.getLogger(__name__)

EVENT_KIND: Final = "netconf-notification"
NOTIFICATION_CAPABILITY: Final = "urn:ietf:params:netconf:capability:notification:1.0"
NS_NETMOD_NOTIF: Final = "urn:ietf:params:xml:ns:netmod:notification"
_COMPLETIONS: Final = frozenset(
    {f"{{{NS_NETMOD_NOTIF}}}replayComplete", f"{{{NS_NETMOD_NOTIF}}}notificationComplete"}
)
MAX_QUEUED: Final = 10_000
"""Notifications received and not yet recorded, per session, before the session is closed."""
PREVIOUS_WAIT: Final = 30.0
"""Seconds a new session of a device waits for its previous session's recording to end."""
REMEMBERED: Final = 1024
"""Stored (eventTime, digest) pairs loaded and kept per session to recognise a replayed one."""

Record = Callable[[str, DeviceSession, Mapping[str, Any]], Awaitable[None]]
"""Stores one event: (kind, session, detail)."""
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


def describe(notification: Notification, max_content: int) -> dict[str, Any] | None:
    """The event detail of one notification; None for replayComplete and
    notificationComplete."""
    content = notification.content
    if not content:
        return None
    top = content[0]
    if top.tag in _COMPLETIONS:
        return None
    qname = etree.QName(top)
    canonical = b"".join(etree.tostring(el, method="c14n", exclusive=True) for el in content)
    xml = b"".join(etree.tostring(el) for el in content)
    detail: dict[str, Any] = {
        "eventTime": notification.event_time,
        "name": qname.localname,
        "namespace": qname.namespace or "",
        "digest": hashlib.sha256(canonical).hexdigest(),
        "xml": xml[:max_content].decode("utf-8", "replace"),
    }
    if len(xml) > max_content:
        detail["truncated"] = True
    return detail


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class NetconfNotifications:
    """Subscribes to each device's notifications and records them (see the module)."""

    def __init__(
        self,
        store: Store,
        settings: ManagerNotificationsSection,
        record: Record,
        spawn: Spawn,
        *,
        clock: Clock = SYSTEM,
    ) -> None:
        self._store = store
        self._settings = settings
        self._record = record
        self._spawn = spawn
        self._clock = clock
        # per device: set when the recording of its latest session has ended
        self._finished: dict[str, asyncio.Event] = {}
        # per device: its latest subscribing session, and set once its replay is over
        # (replayComplete, no replay asked, or no subscription after all)
        self._settled: dict[str, tuple[DeviceSession, asyncio.Event]] = {}

    def replay_settled(self, session: DeviceSession) -> bool:
        """Whether nothing more is awaited from this session's replay: it ended with
        ``replayComplete``, none was asked for, or there is no subscription on it."""
        entry = self._settled.get(session.name)
        return entry is None or entry[0] is not session or entry[1].is_set()

    def session_ready(self, session: DeviceSession) -> None:
        """Subscribe on this new session if the device offers notifications."""
        if not self._settings.subscribe or NOTIFICATION_CAPABILITY not in session.capabilities:
            return
        queue: asyncio.Queue[Notification | None] = asyncio.Queue()
        settled = asyncio.Event()
        self._settled[session.name] = (session, settled)

        def received(notification: Notification) -> None:
            content = notification.content
            if content and content[0].tag in _COMPLETIONS:
                settled.set()
            if queue.qsize() >= MAX_QUEUED:
                log.warning(
                    "device %s: %d notifications wait to be stored; closing the session so "
                    "that they are replayed later",
                    session.name,
                    MAX_QUEUED,
                )
                session.close_for(
                    f"{MAX_QUEUED} notifications waited to be stored (replayed next time)"
                )
                return
            queue.put_nowait(notification)

        session.netconf.on_notification = received
        previous = self._finished.get(session.name)
        finished = self._finished[session.name] = asyncio.Event()
        self._spawn(self._run(session, queue, previous, finished, settled))

    async def _run(
        self,
        session: DeviceSession,
        queue: asyncio.Queue[Notification | None],
        previous: asyncio.Event | None,
        finished: asyncio.Event,
        settled: asyncio.Event,
    ) -> None:
        try:
            if previous is not None:
                # the device's previous session may still be recording: its last
                # notification decides this session's startTime
                await self._clock.wait([previous], PREVIOUS_WAIT)
            seen, start = await self._stored(session.name)
            if not await self._subscribe(session, start):
                settled.set()  # no replay asked: no replayComplete comes
            recorder = asyncio.create_task(self._record_or_close(session, queue, seen))
            try:
                await session.wait_closed()
                queue.put_nowait(None)  # what came before the end is still recorded
                await recorder
            finally:
                recorder.cancel()
        except (SessionClosed, TimeoutError, RpcError) as exc:
            log.info("device %s: no notification subscription: %s", session.name, exc)
        finally:
            finished.set()
            settled.set()
            if self._finished.get(session.name) is finished:
                del self._finished[session.name]
            if self._settled.get(session.name, (None,))[0] is session:
                del self._settled[session.name]

    async def _stored(self, device: str) -> tuple[deque[tuple[str, str]], str | None]:
        """What is stored already: recent (eventTime, digest) pairs, and the startTime."""
        events = await self._store.list_events(
            device=device, kinds=[EVENT_KIND], limit=REMEMBERED, newest=True
        )
        seen: deque[tuple[str, str]] = deque(maxlen=REMEMBERED)
        for event in events:
            seen.append((str(event.detail.get("eventTime")), str(event.detail.get("digest"))))
        if events:
            return seen, str(events[-1].detail.get("eventTime"))
        lookback = self._settings.lookback
        return seen, None if lookback is None else _rfc3339(self._clock.time() - lookback)

    async def _subscribe(self, session: DeviceSession, start: str | None) -> bool:
        """Subscribe; whether a replay was asked for (then ``replayComplete`` follows)."""
        try:
            await session.netconf.rpc(op_create_subscription(start_time=start))
        except RpcError as exc:
            if start is None:
                log.warning("device %s refused a subscription: %s", session.name, exc)
                raise SessionClosed("subscription refused") from None
            log.warning(
                "device %s refused a replay from %s (%s); subscribing without one",
                session.name,
                start,
                exc,
            )
            await session.netconf.rpc(op_create_subscription())
            start = None
        log.info("device %s: subscribed to notifications from %s", session.name, start or "now")
        return start is not None

    async def _record_or_close(
        self,
        session: DeviceSession,
        queue: asyncio.Queue[Notification | None],
        seen: deque[tuple[str, str]],
    ) -> None:
        """Record all; if one cannot be, close the session rather than record no more: the
        device's next session replays from the last one stored."""
        try:
            await self._record_all(session, queue, seen)
        except Exception as exc:
            log.warning(
                "device %s: a notification could not be stored (%s); closing the session so "
                "that it is replayed later",
                session.name,
                exc,
            )
            session.close_for(f"a notification could not be stored ({exc}); replayed next time")

    async def _record_all(
        self,
        session: DeviceSession,
        queue: asyncio.Queue[Notification | None],
        seen: deque[tuple[str, str]],
    ) -> None:
        known = set(seen)
        while True:
            notification = await queue.get()
            if notification is None:
                return
            detail = describe(notification, self._settings.max_content)
            if detail is None:
                continue
            key = (detail["eventTime"], detail["digest"])
            if key in known:
                continue
            await self._record(EVENT_KIND, session, detail)
            if len(seen) == seen.maxlen:
                known.discard(seen[0])
            seen.append(key)
            known.add(key)
