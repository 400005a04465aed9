"""The manager's copy of each device's call-home schedule, and when it next expects it."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

import pytest

from callhome.manager.schedule import (
    OVERDUE_GRACE,
    NextExpected,
    NextState,
    ScheduleWatcher,
    config_change_touches_schedule,
    next_expected,
    offers_schedule,
)
from callhome.proto.netconf.capabilities import ModuleSet
from callhome.proto.schedule import Periodic, next_periodic_dial
from callhome.storage import Device, DeviceStatus, MemoryStore, Schedule, ScheduleKind
from callhome.storage.jobs import Job, JobState

FP = "SHA256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
T0 = 1_700_000_000.0
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCN = "urn:ietf:params:xml:ns:yang:ietf-netconf-notifications"
SRV = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"
CAPABILITY = f"{SRV}?module=ietf-netconf-server&revision=2019-07-02&features=ssh-call-home"
"""ietf-netconf-server announced in the hello, as a YANG 1 module would be."""


def device(status: DeviceStatus, since: float, schedule: Schedule | None) -> Device:
    return Device(
        fingerprint=FP,
        key_type="ssh-ed25519",
        name="r1",
        status=status,
        status_since=since,
        address=None,
        first_seen=T0,
        last_seen=since,
        orientation="reverse-ssh",
        capabilities=(),
        credential=None,
        schedule=schedule,
    )


def periodic(period: float, anchor: float | None, since: float = T0) -> Schedule:
    return Schedule(
        kind=ScheduleKind.PERIODIC, since=since, period=period, anchor=anchor, idle_timeout=180.0
    )


PERSISTENT = Schedule(kind=ScheduleKind.PERSISTENT, since=T0)


# -- next expected ---------------------------------------------------------------------------


def test_a_connected_device_is_expected_now_whatever_its_schedule() -> None:
    for schedule in (None, PERSISTENT, periodic(900, T0)):
        d = device(DeviceStatus.ONLINE, T0 + 5, schedule)
        assert next_expected(d, T0 + 100) == NextExpected(NextState.CONNECTED, T0 + 5)


def test_a_persistent_device_away_is_reconnecting_since_it_left() -> None:
    d = device(DeviceStatus.OFFLINE, T0 + 7, PERSISTENT)
    assert next_expected(d, T0 + 10_000) == NextExpected(NextState.RECONNECTING, T0 + 7)


def test_an_unknown_schedule_or_an_unapproved_device_has_no_expectation() -> None:
    assert next_expected(device(DeviceStatus.OFFLINE, T0, None), T0) is None
    for status in (DeviceStatus.PENDING, DeviceStatus.REFUSED):
        assert next_expected(device(status, T0, PERSISTENT), T0) is None


@pytest.mark.parametrize("left", [T0 + 1, T0 + 899.5, T0 + 900, T0 + 901, T0 - 3 * 900 + 17])
def test_a_periodic_device_is_expected_at_the_next_boundary_after_it_left(left: float) -> None:
    d = device(DeviceStatus.OFFLINE, left, periodic(900, T0))
    got = next_expected(d, left + 1)
    assert got is not None and got.state is NextState.EXPECTED
    assert left <= got.time < left + 900
    assert (got.time - T0) % 900 == 0
    assert got.time == next_periodic_dial(left, T0, 900)  # the device's own arithmetic


def test_an_anchorless_schedule_counts_from_when_it_took_effect() -> None:
    d = device(DeviceStatus.OFFLINE, T0 + 1000, periodic(600, None, since=T0 + 5))
    got = next_expected(d, T0 + 1001)
    assert got == NextExpected(NextState.EXPECTED, T0 + 5 + 2 * 600)


def test_a_periodic_device_is_overdue_past_the_grace_period() -> None:
    d = device(DeviceStatus.OFFLINE, T0 + 10, periodic(300, T0))
    due = T0 + 300
    assert next_expected(d, due + OVERDUE_GRACE) == NextExpected(NextState.EXPECTED, due)
    late = next_expected(d, due + OVERDUE_GRACE + 1)
    assert late == NextExpected(NextState.OVERDUE, due, OVERDUE_GRACE + 1)
    assert next_expected(d, due + 30, grace=10) == NextExpected(NextState.OVERDUE, due, 30)


# -- what tells the manager ----------------------------------------------------------------


def test_the_module_is_recognised_in_the_hello_or_the_yang_library() -> None:
    from callhome.proto.netconf.capabilities import ModuleInfo

    assert offers_schedule(ModuleSet([f"{NC}", CAPABILITY]))
    assert offers_schedule(ModuleSet([f"{SRV}?module=ietf-netconf-server&revision=2024-10-10"]))
    assert not offers_schedule(ModuleSet([NC, f"{SRV}-x?module=other"]))
    listed = ModuleInfo("ietf-netconf-server", "2023-12-28", SRV)
    assert offers_schedule(ModuleSet([NC], [listed]))
    imported = ModuleInfo("ietf-netconf-server", "2023-12-28", SRV, implemented=False)
    assert not offers_schedule(ModuleSet([NC], [imported]))


def change(target: str, datastore: str = "running", nsmap: str = "") -> dict[str, Any]:
    xml = (
        f'<netconf-config-change xmlns="{NCN}"><changed-by><server/></changed-by>'
        f"<datastore>{datastore}</datastore><edit><target{nsmap}>{target}</target>"
        f"<operation>merge</operation></edit></netconf-config-change>"
    )
    return {"name": "netconf-config-change", "namespace": NCN, "xml": xml}


def test_config_changes_that_touch_the_call_home_configuration() -> None:
    assert config_change_touches_schedule(change("/netconf-server"))
    assert config_change_touches_schedule(
        change(
            "/ncs:netconf-server/ncs:call-home/ncs:netconf-client[ncs:name='x']",
            nsmap=f' xmlns:ncs="{SRV}"',
        )
    )
    assert config_change_touches_schedule(change("/"))  # copy-config, rollback ...
    assert config_change_touches_schedule({**change("/x:other"), "truncated": True})


def test_config_changes_elsewhere_or_of_other_datastores_do_not() -> None:
    assert not config_change_touches_schedule(change("/system/hostname"))
    assert not config_change_touches_schedule(
        change("/o:netconf-server", nsmap=' xmlns:o="urn:example:other"')
    )
    assert not config_change_touches_schedule(change("/netconf-server", datastore="startup"))
    other = {**change("/netconf-server"), "name": "netconf-session-start"}
    assert not config_change_touches_schedule(other)


class _Session:
    """Enough of a DeviceSession for the watcher: capabilities and a get-config."""

    def __init__(self, reply: str, capabilities: tuple[str, ...] = (CAPABILITY,)) -> None:
        from callhome.net.session import Orientation
        from callhome.proto.netconf.xmltools import parse_xml

        self.fingerprint = FP
        self.name = "r1"
        self.orientation = Orientation.REVERSE_SSH
        self.capabilities = capabilities
        self.connected_at = T0 + 1
        self.closed = asyncio.Event()
        self.calls = 0
        outer = self

        class _Netconf:
            async def get_config(self, source: str, filter: str | None = None) -> Any:
                outer.calls += 1
                data = parse_xml(f'<data xmlns="{NC}">{reply}</data>'.encode())

                class _Reply:
                    pass

                r = _Reply()
                r.data = data  # type: ignore[attr-defined]
                return r

        self.netconf = _Netconf()


PERIODIC_XML = (
    f'<netconf-server xmlns="{SRV}"><call-home><netconf-client><name>a</name>'
    "<connection-type><periodic><period>15</period>"
    "<anchor-time>2024-01-01T00:00:00Z</anchor-time></periodic></connection-type>"
    "</netconf-client></call-home></netconf-server>"
)


async def _watcher(store: MemoryStore) -> tuple[ScheduleWatcher, list[str], list[Any]]:
    learned: list[str] = []
    tasks: list[asyncio.Task[Any]] = []

    async def updated(d: Device, schedule: Schedule | None, how: str) -> None:
        learned.append(how)

    def spawn(coro: Coroutine[Any, Any, Any]) -> None:
        tasks.append(asyncio.ensure_future(coro))

    async def current_device(key: str) -> Device | None:
        return await store.device_by_fingerprint(key) or await store.device_by_name(key)

    cache: dict[str, Device | None] = {}

    def current(key: str) -> Device | None:
        return cache.get(key)

    watcher = ScheduleWatcher(store, current, updated, spawn, clock=lambda: T0 + 50)

    async def refresh() -> None:
        for key in (FP, "r1"):
            cache[key] = await current_device(key)

    return watcher, learned, [tasks, refresh]


async def test_read_on_connect_only_while_unknown() -> None:
    store = MemoryStore()
    await store.pre_approve(FP, "ssh-ed25519", "r1", T0)
    watcher, learned, (tasks, refresh) = await _watcher(store)
    await refresh()
    session = _Session(
        PERIODIC_XML, (CAPABILITY, "urn:ietf:params:netconf:capability:notification:1.0")
    )

    watcher.session_ready(session, (await store.device_by_fingerprint(FP)))  # type: ignore[arg-type]
    await asyncio.gather(*tasks)
    stored = (await store.device_by_fingerprint(FP)).schedule  # type: ignore[union-attr]
    assert stored == periodic(900.0, 1704067200.0, since=T0 + 1)
    assert learned == ["connect"] and session.calls == 1

    # known, and the device tells of changes: no read on the next connect
    await refresh()
    watcher.session_ready(session, await store.device_by_fingerprint(FP))  # type: ignore[arg-type]
    await asyncio.gather(*tasks)
    assert session.calls == 1

    # a device that cannot tell of changes is read on every connect
    quiet = _Session(PERIODIC_XML)
    watcher.session_ready(quiet, await store.device_by_fingerprint(FP))  # type: ignore[arg-type]
    await asyncio.gather(*tasks)
    assert quiet.calls == 1 and learned == ["connect"]  # same schedule: nothing new stored

    # no module capability: never read
    none = _Session(PERIODIC_XML, ())
    watcher.session_ready(none, replace(await store.device_by_fingerprint(FP), schedule=None))  # type: ignore[arg-type]
    assert none.calls == 0


async def test_a_schedule_job_is_learned_from_what_it_set_without_a_read() -> None:
    store = MemoryStore()
    await store.pre_approve(FP, "ssh-ed25519", "r1", T0)
    watcher, learned, (tasks, refresh) = await _watcher(store)
    await refresh()
    from callhome.manager.schedule_job import schedule_payload

    job = Job(
        id=1,
        device="r1",
        kind="schedule",
        payload=schedule_payload(periodic=True, period=120.0, idle_timeout=30),
        actor="t",
        created=T0,
        not_before=T0,
        expires=None,
        state=JobState.SUCCEEDED,
        updated=T0 + 9,
    )
    session = _Session("")
    watcher.job_finished(job, session)  # type: ignore[arg-type]
    await asyncio.gather(*tasks)
    stored = (await store.device_by_fingerprint(FP)).schedule  # type: ignore[union-attr]
    assert stored == Schedule(
        kind=ScheduleKind.PERIODIC, since=T0 + 9, period=120.0, anchor=None, idle_timeout=30.0
    )
    assert learned == ["job"] and session.calls == 0

    # a failed job teaches nothing
    watcher.job_finished(replace(job, state=JobState.FAILED), session)  # type: ignore[arg-type]
    assert not tasks[1:]


def test_the_stored_schedule_matches_the_agent_model() -> None:
    kind = Periodic(period=60.0, anchor=None, idle_timeout=0.0)
    from callhome.manager.schedule import schedule_from

    assert schedule_from(kind, T0) == Schedule(
        kind=ScheduleKind.PERIODIC, since=T0, period=60.0, anchor=None, idle_timeout=0.0
    )


class _SlowStore(MemoryStore):
    """A store whose writes yield to the loop, as a real database's do."""

    async def set_schedule(self, fingerprint: str, schedule: Schedule | None) -> Device:
        await asyncio.sleep(0)
        return await super().set_schedule(fingerprint, schedule)


async def test_a_read_and_a_job_learning_the_same_change_record_it_once() -> None:
    store = _SlowStore()
    await store.pre_approve(FP, "ssh-ed25519", "r1", T0)
    cache: dict[str, Device | None] = {FP: await store.device_by_fingerprint(FP)}
    learned: list[str] = []

    async def updated(d: Device, schedule: Schedule | None, how: str) -> None:
        learned.append(how)
        cache[FP] = d  # as the manager does: its own copy follows the store

    watcher = ScheduleWatcher(store, cache.get, updated, lambda c: None, clock=lambda: T0)
    schedule = periodic(900.0, 1704067200.0)
    await asyncio.gather(
        watcher._store_schedule(FP, schedule, "notification"),
        watcher._store_schedule(FP, schedule, "job"),
    )
    assert learned == ["notification"]
