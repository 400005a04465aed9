"""The manager's NETCONF notification subscriber (RFC 5277), in process: a real Store (in
memory, and SQLite in a temporary file), a real DeviceSession whose NETCONF client is a fake
that records the subscriptions asked of it and hands notifications in as a device would."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Coroutine, Mapping
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from manager_fakes import DEV_FP, device_session, turns, until, until_stored

from callhome.clock import SYSTEM, Clock, FakeClock
from callhome.config import ManagerConfig, ManagerNotificationsSection
from callhome.errors import ErrorTag, RpcError, StoreError
from callhome.manager import notifications as notifications_module
from callhome.manager.notifications import (
    EVENT_KIND,
    NOTIFICATION_CAPABILITY,
    PREVIOUS_WAIT,
    NetconfNotifications,
    describe,
)
from callhome.manager.service import Manager
from callhome.net.session import DeviceSession
from callhome.proto.netconf import Notification
from callhome.proto.netconf.events import RpcReply
from callhome.storage import MemoryStore, SqlStore, Store

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NS_NOTIF = "urn:ietf:params:xml:ns:netconf:notification:1.0"
NS_NETMOD = "urn:ietf:params:xml:ns:netmod:notification"
DEMO = "urn:example:demo"
BASE = "urn:ietf:params:netconf:base:1.1"
T = "2024-05-01T10:00:0{}Z"  # T.format(n): eventTimes one second apart


def alarm(n: int, text: str = "") -> str:
    return f'<alarm xmlns="{DEMO}"><id>{n}</id>{text}</alarm>'


def notification(event_time: str, body: str, *, declare: str = "") -> Notification:
    """A ``<notification>`` as the device's core hands it out."""
    xml = (
        f'<notification xmlns="{NS_NOTIF}"{declare}><eventTime>{event_time}</eventTime>'
        f"{body}</notification>"
    )
    return Notification(event_time, etree.fromstring(xml))


class FakeNetconf:
    """The NETCONF client of one session: answers every rpc with ``<ok/>`` unless a refusal
    is queued for it, and delivers notifications through ``on_notification``."""

    def __init__(self, capabilities: tuple[str, ...] = (BASE, NOTIFICATION_CAPABILITY)) -> None:
        self.capabilities = capabilities
        self.on_notification: Any = None
        self.closed = False
        self.requests: list[etree._Element] = []
        self.refusals: list[RpcError] = []

    async def rpc(self, operation: etree._Element, timeout: float | None = None) -> RpcReply:
        self.requests.append(operation)
        if self.refusals:
            raise self.refusals.pop(0)
        element = etree.fromstring(f'<rpc-reply xmlns="{NC}" message-id="1"><ok/></rpc-reply>')
        return RpcReply("1", True, None, [], element, etree.tostring(element))

    @property
    def start_times(self) -> list[str | None]:
        """The startTime of each subscription asked for (None: none)."""
        found: list[str | None] = []
        for request in self.requests:
            assert request.tag == f"{{{NS_NOTIF}}}create-subscription"
            found.append(request.findtext(f"{{{NS_NOTIF}}}startTime"))
        return found

    def send(self, event_time: str, body: str, *, declare: str = "") -> None:
        assert self.on_notification is not None, "nobody subscribed"
        self.on_notification(notification(event_time, body, declare=declare))


class Harness:
    """NetconfNotifications over a store, recording as the Manager does; each record may be
    held at a gate (a store slower than the device)."""

    def __init__(
        self,
        store: Store,
        settings: ManagerNotificationsSection | None = None,
        clock: Clock = SYSTEM,
    ) -> None:
        self.store = store
        self.clock = clock
        self.tasks: list[asyncio.Task[Any]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.held = 0
        """Records waiting at the gate now."""
        self.failures: list[Exception] = []
        """What the next records fail with (a store in trouble)."""
        self.subscriber = NetconfNotifications(
            store, settings or ManagerNotificationsSection(), self.record, self.spawn, clock=clock
        )

    async def record(self, kind: str, session: DeviceSession, detail: Mapping[str, Any]) -> None:
        if self.failures:
            raise self.failures.pop(0)
        self.held += 1
        try:
            await self.gate.wait()
        finally:
            self.held -= 1
        await self.store.record_event(
            kind,
            self.clock.time(),
            device=session.name,
            fingerprint=session.fingerprint,
            detail=detail,
        )

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.tasks.append(asyncio.get_running_loop().create_task(coro))

    def connect(self, netconf: FakeNetconf | None = None) -> tuple[DeviceSession, FakeNetconf]:
        """A new session of the device, ready (as the Manager calls it)."""
        netconf = netconf or FakeNetconf()
        session, _ = device_session(netconf)
        self.subscriber.session_ready(session)
        return session, netconf

    async def subscribed(self, netconf: FakeNetconf, count: int = 1) -> None:
        await until(lambda: len(netconf.requests) >= count, f"{count} subscription(s)")
        await until(lambda: netconf.on_notification is not None, "a notification handler")

    async def stored(self, device: str = "dev") -> list[dict[str, Any]]:
        events = await self.store.list_events(device=device, kinds=[EVENT_KIND], limit=1000)
        return [e.detail for e in events]

    async def wait_stored(self, count: int) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []

        async def enough() -> bool:
            found[:] = await self.stored()
            return len(found) >= count

        await until_stored(enough, f"{count} notification(s) stored")
        return found

    async def ended(self) -> None:
        """Every subscription task has ended (its session closed)."""
        await until(lambda: all(t.done() for t in self.tasks), "the subscription tasks to end")
        for task in self.tasks:
            task.result()  # none failed


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    opened: Store = (
        MemoryStore() if request.param == "memory" else SqlStore.for_path(tmp_path / "m.db")
    )
    await opened.open()
    yield opened
    await opened.close()


async def store_notification(store: Store, event_time: str, digest: str = "d") -> None:
    """A notification recorded by an earlier session of the device."""
    detail = {"eventTime": event_time, "digest": digest, "name": "alarm", "namespace": DEMO}
    await store.record_event(EVENT_KIND, 1.0, device="dev", fingerprint=DEV_FP, detail=detail)


def close(session: DeviceSession) -> None:
    session.mark_closed("connection lost")


# -- the event detail of one notification ---------------------------------------------------


def test_a_notification_is_described_by_its_top_element_content_and_digest() -> None:
    body = f'<alarm xmlns="{DEMO}"><id>7</id><text>a &amp; b</text></alarm>'
    detail = describe(notification(T.format(1), body), 65536)
    assert detail == {
        "eventTime": T.format(1),
        "name": "alarm",
        "namespace": DEMO,
        "digest": hashlib.sha256(body.encode()).hexdigest(),  # already canonical
        "xml": body,
    }
    bare = describe(notification(T.format(1), '<alarm xmlns=""/>'), 65536)
    assert bare is not None and bare["name"] == "alarm" and bare["namespace"] == ""


def test_the_digest_is_of_the_exclusive_canonical_content() -> None:
    """Where a namespace is declared, and declarations the content does not use, change
    nothing; a different content changes the digest."""
    here = describe(
        notification(T.format(1), f'<a:alarm xmlns:a="{DEMO}"><a:id>7</a:id></a:alarm>'), 1 << 16
    )
    above = describe(
        notification(
            T.format(1),
            "<a:alarm><a:id>7</a:id></a:alarm>",
            declare=f' xmlns:a="{DEMO}" xmlns:u="urn:u"',
        ),
        1 << 16,
    )
    other = describe(
        notification(T.format(1), f'<a:alarm xmlns:a="{DEMO}"><a:id>8</a:id></a:alarm>'), 1 << 16
    )
    assert here is not None and above is not None and other is not None
    assert here["digest"] == above["digest"] != other["digest"]


def test_content_past_max_content_is_cut_and_marked_truncated() -> None:
    body = alarm(1, "x" * 1000)
    detail = describe(notification(T.format(1), body), 256)
    assert detail is not None
    assert detail["xml"] == body[:256] and detail["truncated"] is True
    whole = describe(notification(T.format(1), body), len(body))
    assert whole is not None and whole["xml"] == body and "truncated" not in whole
    # the digest is of the whole content, cut or not
    assert detail["digest"] == whole["digest"]


@pytest.mark.parametrize("completion", ["replayComplete", "notificationComplete"])
def test_replay_and_notification_complete_are_not_described(completion: str) -> None:
    assert (
        describe(notification(T.format(1), f'<{completion} xmlns="{NS_NETMOD}"/>'), 1 << 16) is None
    )
    assert describe(notification(T.format(1), ""), 1 << 16) is None


# -- subscribing --------------------------------------------------------------------------


async def test_no_subscription_without_notification_capability(store: Store) -> None:
    harness = Harness(store)
    session, netconf = harness.connect(FakeNetconf(capabilities=(BASE,)))
    await turns()
    assert netconf.requests == [] and netconf.on_notification is None and harness.tasks == []
    assert harness.subscriber.replay_settled(session)


async def test_no_subscription_when_subscribe_is_off(store: Store) -> None:
    harness = Harness(store, ManagerNotificationsSection(subscribe=False))
    _session, netconf = harness.connect()
    await turns()
    assert netconf.requests == [] and netconf.on_notification is None and harness.tasks == []


async def test_the_first_subscription_asks_for_no_replay(store: Store) -> None:
    harness = Harness(store)
    session, netconf = harness.connect()
    await harness.subscribed(netconf)
    assert netconf.start_times == [None]
    # nothing replayed, so no replayComplete is awaited
    await until(lambda: harness.subscriber.replay_settled(session), "the replay settled")
    close(session)
    await harness.ended()


async def test_lookback_asks_for_that_many_seconds_before_now_on_the_clock(store: Store) -> None:
    clock = FakeClock(start=1_700_000_000.0)
    await clock.advance(90.5)
    harness = Harness(store, ManagerNotificationsSection(lookback=3600), clock)
    session, netconf = harness.connect()
    await harness.subscribed(netconf)
    # 1_700_000_090.5 - 3600
    assert netconf.start_times == ["2023-11-14T21:14:50.500000Z"]
    assert not harness.subscriber.replay_settled(session)  # a replay was asked for
    close(session)
    await harness.ended()


async def test_the_start_time_is_the_newest_stored_notification_of_the_device(
    store: Store,
) -> None:
    await store_notification(store, T.format(1))
    await store_notification(store, T.format(2))
    # another device's, and another kind of event: neither counts
    await store.record_event(EVENT_KIND, 2.0, device="other", detail={"eventTime": T.format(8)})
    await store.record_event("connected", 3.0, device="dev", detail={"eventTime": T.format(9)})
    harness = Harness(store, ManagerNotificationsSection(lookback=3600))  # stored wins
    session, netconf = harness.connect()
    await harness.subscribed(netconf)
    assert netconf.start_times == [T.format(2)]
    close(session)
    await harness.ended()


async def test_a_refused_replay_is_subscribed_again_without_start_time(store: Store) -> None:
    await store_notification(store, T.format(1))
    harness = Harness(store)
    netconf = FakeNetconf()
    netconf.refusals.append(RpcError.single(ErrorTag.OPERATION_FAILED, "no replay"))
    session, _ = harness.connect(netconf)
    await harness.subscribed(netconf, 2)
    assert netconf.start_times == [T.format(1), None]
    await until(lambda: harness.subscriber.replay_settled(session), "no replay awaited")
    netconf.send(T.format(5), alarm(5))
    assert [d["eventTime"] for d in await harness.wait_stored(2)] == [T.format(1), T.format(5)]
    close(session)
    await harness.ended()


async def test_a_refused_subscription_records_nothing_and_ends(store: Store) -> None:
    harness = Harness(store)
    netconf = FakeNetconf()
    netconf.refusals.append(RpcError.single(ErrorTag.ACCESS_DENIED, "not you"))
    session, _ = harness.connect(netconf)
    await harness.ended()  # without the session closing
    assert netconf.start_times == [None]
    assert harness.subscriber.replay_settled(session)
    assert not session.closed.is_set()


# -- recording ------------------------------------------------------------------------------


async def test_each_notification_is_recorded_in_arrival_order(store: Store) -> None:
    harness = Harness(store, ManagerNotificationsSection(max_content=256))
    session, netconf = harness.connect()
    await harness.subscribed(netconf)
    netconf.send(T.format(3), alarm(3))
    netconf.send(T.format(1), alarm(1))  # an older eventTime, later: stays later
    netconf.send(T.format(2), alarm(2, "y" * 300))
    stored = await harness.wait_stored(3)
    assert [d["eventTime"] for d in stored] == [T.format(3), T.format(1), T.format(2)]
    assert stored[0] == describe(notification(T.format(3), alarm(3)), 256)
    assert stored[0]["name"] == "alarm" and stored[0]["namespace"] == DEMO
    assert stored[0]["xml"] == alarm(3) and "truncated" not in stored[0]
    assert stored[2]["truncated"] is True and len(stored[2]["xml"]) == 256
    events = await store.list_events(device="dev", kinds=[EVENT_KIND], limit=10)
    assert {(e.kind, e.device, e.fingerprint) for e in events} == {(EVENT_KIND, "dev", DEV_FP)}
    close(session)
    await harness.ended()


async def test_a_replayed_duplicate_is_skipped_and_a_new_one_of_the_same_time_is_not(
    store: Store,
) -> None:
    first = Harness(store)
    session, netconf = first.connect()
    await first.subscribed(netconf)
    netconf.send(T.format(1), alarm(1))
    netconf.send(T.format(2), alarm(2))
    await first.wait_stored(2)
    close(session)
    await first.ended()

    again = Harness(store)  # the device calls again: a replay from the last stored
    session, netconf = again.connect()
    await again.subscribed(netconf)
    assert netconf.start_times == [T.format(2)]
    netconf.send(T.format(2), alarm(2))  # the replay begins with the last one stored
    netconf.send(T.format(2), alarm(22))  # another of that same eventTime
    netconf.send(T.format(3), alarm(3))
    netconf.send(T.format(3), alarm(3))  # and the device's own repetition
    netconf.send(T.format(4), alarm(4))  # a sentinel: everything before it was looked at
    stored = await again.wait_stored(5)
    assert [(d["eventTime"], d["xml"]) for d in stored] == [
        (T.format(1), alarm(1)),
        (T.format(2), alarm(2)),
        (T.format(2), alarm(22)),
        (T.format(3), alarm(3)),
        (T.format(4), alarm(4)),
    ]
    close(session)
    await again.ended()


async def test_replay_and_notification_complete_are_not_recorded(store: Store) -> None:
    await store_notification(store, T.format(1))
    harness = Harness(store)
    session, netconf = harness.connect()
    await harness.subscribed(netconf)
    assert netconf.start_times == [T.format(1)]
    netconf.send(T.format(2), alarm(2))
    assert not harness.subscriber.replay_settled(session)
    netconf.send(T.format(3), f'<replayComplete xmlns="{NS_NETMOD}"/>')
    assert harness.subscriber.replay_settled(session)  # as soon as it arrives
    netconf.send(T.format(4), alarm(4))
    netconf.send(T.format(5), f'<notificationComplete xmlns="{NS_NETMOD}"/>')
    netconf.send(T.format(6), alarm(6))  # a sentinel: everything before it was looked at
    stored = await harness.wait_stored(4)
    assert [d["eventTime"] for d in stored] == [T.format(n) for n in (1, 2, 4, 6)]
    close(session)
    await harness.ended()


async def test_what_came_before_the_end_is_still_recorded(store: Store) -> None:
    harness = Harness(store)
    session, netconf = harness.connect()
    await harness.subscribed(netconf)
    harness.gate.clear()
    for n in range(1, 4):
        netconf.send(T.format(n), alarm(n))
    await until(lambda: harness.held == 1, "the first record to wait")
    close(session)
    await turns()
    harness.gate.set()
    await harness.ended()
    assert [d["eventTime"] for d in await harness.stored()] == [T.format(n) for n in (1, 2, 3)]


async def test_a_new_session_waits_for_the_previous_sessions_recording(store: Store) -> None:
    harness = Harness(store)
    first, netconf = harness.connect()
    await harness.subscribed(netconf)
    harness.gate.clear()  # the store is slow: the first session's last ones not stored yet
    netconf.send(T.format(1), alarm(1))
    netconf.send(T.format(2), alarm(2))
    await until(lambda: harness.held == 1, "the first record to wait")
    close(first)
    second, again = harness.connect()
    await turns()
    assert again.requests == []  # no startTime chosen while the previous still records
    harness.gate.set()
    await harness.subscribed(again)
    assert again.start_times == [T.format(2)]
    assert harness.tasks[0].done()
    close(second)
    await harness.ended()


async def test_the_wait_for_the_previous_session_ends_after_previous_wait(
    store: Store,
) -> None:
    await store_notification(store, T.format(1))
    clock = FakeClock()
    harness = Harness(store, clock=clock)
    first, netconf = harness.connect()
    await harness.subscribed(netconf)
    harness.gate.clear()
    netconf.send(T.format(2), alarm(2))
    await until(lambda: harness.held == 1, "the record to hang")
    close(first)
    second, again = harness.connect()
    await until(lambda: clock.sleepers == 1, "the second session to wait on the clock")
    await clock.advance(PREVIOUS_WAIT - 0.5)
    await turns()
    assert again.requests == []
    await clock.advance(0.5)
    await harness.subscribed(again)
    assert again.start_times == [T.format(1)]  # the hung one is not stored: not a start
    close(second)
    harness.gate.set()
    await harness.ended()


async def test_too_many_waiting_close_the_session_and_none_is_dropped_before(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(notifications_module, "MAX_QUEUED", 5)
    harness = Harness(store)
    netconf = FakeNetconf()
    session, transport = device_session(netconf)
    harness.subscriber.session_ready(session)
    await harness.subscribed(netconf)
    harness.gate.clear()
    netconf.send(T.format(0), alarm(0))
    await until(lambda: harness.held == 1, "the first record to wait")
    for n in range(1, 6):  # five wait: the limit, not over it
        netconf.send(T.format(n), alarm(n))
    assert (transport.closes, session.cause) == (0, "")
    netconf.send(T.format(6), alarm(6))  # one more than may wait
    assert transport.closes == 1
    cause: str = session.cause
    assert cause == "5 notifications waited to be stored (replayed next time)"
    harness.gate.set()
    await harness.ended()
    assert session.close_reason == session.cause
    assert [d["eventTime"] for d in await harness.stored()] == [T.format(n) for n in range(6)]


async def test_a_notification_that_cannot_be_stored_closes_the_session(store: Store) -> None:
    """Recording does not stop quietly for the rest of the session: the session is closed,
    and the device's next one replays from the last notification stored."""
    harness = Harness(store)
    netconf = FakeNetconf()
    session, transport = device_session(netconf)
    harness.subscriber.session_ready(session)
    await harness.subscribed(netconf)
    netconf.send(T.format(1), alarm(1))
    await harness.wait_stored(1)
    harness.failures.append(StoreError("database is locked"))
    netconf.send(T.format(2), alarm(2))
    netconf.send(T.format(3), alarm(3))
    await until(session.closed.is_set, "the session to be closed")
    assert transport.closes == 1
    assert session.close_reason == (
        "a notification could not be stored (database is locked); replayed next time"
    )
    await harness.ended()  # and its task ends without an error
    assert [d["eventTime"] for d in await harness.stored()] == [T.format(1)]
    again = Harness(store)
    session, netconf = again.connect()
    await again.subscribed(netconf)
    assert netconf.start_times == [T.format(1)]
    close(session)
    await again.ended()


# -- in the Manager -------------------------------------------------------------------------


async def test_the_manager_subscribes_on_its_own_clock(tmp_path: Path) -> None:
    clock = FakeClock(start=1_700_000_000.0)
    config = ManagerConfig(
        state_dir=tmp_path, notifications=ManagerNotificationsSection(lookback=60)
    )
    manager = Manager(config, MemoryStore(), clock=clock)
    await manager.store.open()
    netconf = FakeNetconf()
    session, _ = device_session(netconf)
    manager.netconf_notifications.session_ready(session)
    await until(
        lambda: netconf.on_notification is not None and bool(netconf.requests), "subscribed"
    )
    assert netconf.start_times == ["2023-11-14T22:12:20.000000Z"]
    await clock.advance(5)
    netconf.send(T.format(1), alarm(1))

    async def recorded() -> list[Any]:
        return await manager.store.list_events(device="dev", kinds=[EVENT_KIND])

    async def any_recorded() -> bool:
        return bool(await recorded())

    await until_stored(any_recorded, "the notification recorded")
    (event,) = await recorded()
    assert event.time == 1_700_000_005.0 and event.fingerprint == DEV_FP
    assert event.detail["eventTime"] == T.format(1)
    close(session)
    await until(lambda: not manager._tasks, "the manager's subscription task to end")
