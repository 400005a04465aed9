"""The device's call-home loop on a fake clock: back-off, the periodic schedule, the
idle-timeout and close-session, without sleeping through a real period."""

from __future__ import annotations

import asyncio
import random

from lxml import etree

from callhome.agent.datastore.core import Datastore
from callhome.agent.dialer import CLOSE_GRACE, Dialer
from callhome.agent.netconf_service import NetconfService
from callhome.agent.schedule import ScheduleState
from callhome.clock import FakeClock
from callhome.config import Endpoint
from callhome.proto.reconnect import ReconnectPlan

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NCS = "urn:ietf:params:xml:ns:yang:ietf-netconf-server"


class FakeConnection:
    def __init__(self) -> None:
        self.closed = asyncio.Event()
        self.aborted = 0

    async def wait_closed(self) -> None:
        await self.closed.wait()

    def abort(self) -> None:
        self.aborted += 1
        self.closed.set()


class FakeTransports:
    """Dials succeed or fail as the test says; each dial is recorded with its time."""

    def __init__(self, clock: FakeClock, outcomes: list[bool]) -> None:
        self.clock = clock
        self.outcomes = outcomes
        self.dials: list[tuple[float, str]] = []
        self.connections: list[FakeConnection] = []

    async def dial(self, endpoint: Endpoint) -> FakeConnection:
        self.dials.append((self.clock.monotonic(), endpoint.address))
        if self.outcomes and not self.outcomes.pop(0):
            raise ConnectionRefusedError(111, "Connection refused")
        conn = FakeConnection()
        self.connections.append(conn)
        return conn

    def identities(self, endpoint: Endpoint, key: str) -> list[str]:
        return [key]


def schedule_xml(kind: str) -> etree._Element:
    return etree.fromstring(
        f'<data xmlns="{NC}"><netconf-server xmlns="{NCS}"><call-home><netconf-client>'
        f"<name>default</name><connection-type>{kind}</connection-type></netconf-client>"
        "</call-home></netconf-server></data>"
    )


def make(
    clock: FakeClock, outcomes: list[bool], kind: str = "<persistent/>"
) -> tuple[Dialer, FakeTransports, NetconfService]:
    running = schedule_xml(kind)
    datastore = Datastore()
    service = NetconfService(datastore, clock=clock.monotonic)
    transports = FakeTransports(clock, outcomes)
    dialer = Dialer(
        [Endpoint(address="127.0.0.1:4334")],
        transports,  # type: ignore[arg-type]
        plan=ReconnectPlan(endpoints=1, max_attempts=1, initial=1.0, cap=4.0, jitter=0.0),
        schedule=ScheduleState(running, read=lambda: running, clock=clock.time),
        netconf=service,
        activity=lambda: service.last_rpc,
        identity="SHA256:me",
        max_wait=30,
        clock=clock,
    )
    return dialer, transports, service


async def test_back_off_grows_then_a_connection_resets_it() -> None:
    clock = FakeClock()
    dialer, transports, _ = make(clock, [False, False, False, True])
    task = asyncio.create_task(dialer.run())
    try:
        await clock.advance(0)
        for _ in range(4):
            await clock.advance(10)
        assert [t for t, _ in transports.dials] == [0.0, 1.0, 3.0, 7.0]  # 1, 2, 4 s apart
        assert dialer.connection is not None
        # the connection drops: redialed at once, no back-off
        dropped_at = clock.monotonic()
        transports.connections[-1].closed.set()
        await clock.advance(0)
        assert transports.dials[-1][0] == dropped_at and len(transports.dials) == 5
    finally:
        task.cancel()


async def test_a_periodic_device_drops_an_idle_connection_and_returns_on_the_boundary() -> None:
    clock = FakeClock(start=1_700_000_000.0)  # a whole number of minutes: the anchor
    kind = (
        "<periodic><period>10</period><anchor-time>2023-11-14T22:13:20Z</anchor-time>"
        "<idle-timeout>60</idle-timeout></periodic>"
    )
    dialer, transports, service = make(clock, [], kind)
    task = asyncio.create_task(dialer.run())
    try:
        await clock.advance(0)
        assert len(transports.dials) == 1
        await clock.advance(59)
        assert transports.connections[0].aborted == 0
        service.last_rpc = clock.monotonic()  # used at 59 s: the idle-timeout starts again
        await clock.advance(59)
        assert transports.connections[0].aborted == 0
        await clock.advance(2)  # 60 s without use: hung up
        assert transports.connections[0].closed.is_set()
        # next boundary: anchor + 10 minutes, and not before
        await clock.advance(600 - 120 - 1)
        assert len(transports.dials) == 1
        await clock.advance(1)
        assert [t for t, _ in transports.dials] == [0.0, 600.0]
    finally:
        task.cancel()


async def test_close_session_of_the_last_session_closes_and_a_persistent_device_calls_again() -> (
    None
):
    clock = FakeClock()
    dialer, transports, service = make(clock, [])
    task = asyncio.create_task(dialer.run())
    try:
        await clock.advance(0)
        first = service.open_session(lambda: None)
        second = service.open_session(lambda: None)
        service.close_session(first, "closed")  # another session remains: nothing happens
        await asyncio.sleep(0)
        assert transports.connections[0].aborted == 0
        service.close_session(second, "closed")
        # the grace (CLOSE_GRACE) runs on the event loop's own timer: wait for its end
        await asyncio.wait_for(transports.connections[0].closed.wait(), CLOSE_GRACE * 20)
        await clock.advance(0)
        assert transports.connections[0].closed.is_set()
        assert len(transports.dials) == 2  # persistent: at once
    finally:
        task.cancel()


async def test_a_wake_cuts_a_back_off_short_but_not_closer_than_the_spacing() -> None:
    clock = FakeClock()
    dialer, transports, _ = make(clock, [False, False, True])
    dialer.plan = ReconnectPlan(endpoints=1, max_attempts=1, initial=30.0, cap=60.0, jitter=0.0)
    task = asyncio.create_task(dialer.run())
    try:
        await clock.advance(0)
        await clock.advance(0.2)
        dialer.wake()
        await clock.advance(0.5)
        assert len(transports.dials) == 1  # within WAKE_SPACING of the last dial
        await clock.advance(0.5)
        assert [t for t, _ in transports.dials] == [0.0, 1.0]
    finally:
        task.cancel()


def test_the_dialer_keeps_no_time_of_its_own() -> None:
    """Nothing in the loop reads time or sleeps but through its clock."""
    import inspect

    from callhome.agent import dialer

    source = inspect.getsource(dialer)
    assert "time.time(" not in source and "time.monotonic(" not in source
    assert "asyncio.sleep(" not in source and "random" not in source.split("import")[0]
    assert random.Random  # the plan's randomness is the caller's
